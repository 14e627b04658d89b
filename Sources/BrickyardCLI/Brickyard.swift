import AdapterIO
import ArgumentParser
import Kernels

/// The `brickyard` command: merges pools of LoRA adapters into one PEFT adapter.
@main
struct Brickyard: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "brickyard",
        abstract: "Merge pools of LoRA adapters into one PEFT adapter.",
        version: BrickyardVersion.string,
        subcommands: [
            MergeCommand.self,
            AdaptCommand.self,
            EvalCommand.self,
            InspectCommand.self,
            CoordinatorCommand.self,
            WorkerCommand.self,
            KeysCommand.self,
            SubmitCommand.self,
            StatusCommand.self,
            ClusterTaskCommand.self,
            SynthCommand.self,
            BenchReadCommand.self,
            BenchEngineCommand.self,
            BLASCoreCommand.self,
        ]
    )

    /// Picks OpenBLAS's kernels (may re-execute this process once, `BLASCoreSelection`), sets the allocator's
    /// thresholds (`ProcessMemory`), then runs the command.
    static func main() {
        BLASCoreSelection.reexecuteIfNeeded()
        ProcessMemory.tuneAllocator()
        main(nil)
    }
}
