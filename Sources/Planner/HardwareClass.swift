/// Default power draw per hardware class, used when a device does not report its own.
///
/// Figures are typical sustained inference power of the board class (vendor "mode" figures, rounded); they only
/// feed the energy estimate (mJ = ms × W), so a device that knows better should send `powerWatts`.
public enum HardwareClass {
    public static let defaultPowerWatts: [String: Double] = [
        "mcu": 0.1,
        "raspberry-pi-4": 4,
        "raspberry-pi-5": 5,
        "phone": 3,
        "jetson-nano": 5,
        "jetson-tx2": 7.5,
        "jetson-xavier-nx": 10,
        "jetson-orin": 15,
        "x86-edge": 25,
    ]
    /// Used for unknown classes: a middle-of-the-road embedded board.
    public static let fallbackPowerWatts: Double = 5

    public static func powerWatts(for hardwareClass: String) -> Double {
        defaultPowerWatts[hardwareClass] ?? fallbackPowerWatts
    }
}
