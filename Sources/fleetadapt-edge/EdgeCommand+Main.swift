import CommandSupport

extension EdgeCommand {
    /// Logging options and FLEETADAPT_* defaults first, then argument-parser; runtime errors exit 1 without the
    /// usage (see `CommandMain`).
    static func main() {
        CommandMain.run(Self.self, logTo: 2)
    }
}
