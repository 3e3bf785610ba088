import ArgumentParser
import Foundation

/// The `main` of every executable: logging options and FLEETADAPT_* defaults applied, then argument-parser
/// parses. A usage error (unknown flag, bad value, failed `validate()`) prints argument-parser's message with the
/// usage and exits 64; an error thrown while the command runs is a runtime error: `Error: <what went wrong>`
/// alone on standard error and exit status 1.
public enum CommandMain {
    public static func run(_ root: any ParsableCommand.Type, logTo fd: Int32 = 2,
                           arguments: [String] = Array(CommandLine.arguments.dropFirst()),
                           environment: [String: String] = ProcessInfo.processInfo.environment) -> Never {
        let logging: LoggingOptions
        let rest: [String]
        do {
            (logging, rest) = try LoggingOptions.extract(from: arguments, environment: environment)
        } catch {
            root.exit(withError: ValidationError(String(describing: error)))
        }
        ProcessLogging.bootstrap(logging, fd: fd)
        let argv = EnvironmentDefaults.apply(to: rest, root: root, environment: environment)
        var command: any ParsableCommand
        do {
            command = try root.parseAsRoot(argv)
        } catch {
            root.exit(withError: error)
        }
        do {
            try command.run()
        } catch let error as ExitCode {
            root.exit(withError: error)
        } catch let error as CleanExit {
            root.exit(withError: error)
        } catch where root.exitCode(for: error) == .success {
            // A help request that surfaced while the command ran (a command that parses another's arguments).
            root.exit(withError: error)
        } catch {
            let message = (error as? ValidationError)?.message ?? String(describing: error)
            FileHandle.standardError.write(Data("Error: \(message)\n".utf8))
            Foundation.exit(1)
        }
        Foundation.exit(0)
    }
}
