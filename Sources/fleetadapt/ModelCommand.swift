import ArgumentParser
import CommandSupport

/// `fleetadapt model …`: the offline phase, from a trained base model to a published elastic package.
struct ModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Train a base model, build an elastic package from it, inspect and report on packages.",
        discussion: HelpText.reflow("""
            The usual path:
              fleetadapt model build --out /tmp/fashion.fap          # trains a base ResNet, derives, distils, profiles
              fleetadapt model inspect /tmp/fashion.fap              # what is inside, verified
              fleetadapt model report /tmp/fashion.fap --out-dir /tmp/report   # CSV + SVG of the scaling space
              curl -X POST -H "Authorization: Bearer $ADMIN_KEY" --data-binary @/tmp/fashion.fap \\
                   http://127.0.0.1:8080/v1/models                 # publish it
            """),
        subcommands: [ModelBuildCommand.self, ModelInspectCommand.self, ModelReportCommand.self, ModelTrainBaseCommand.self,
                       ModelExportCommand.self])
}
