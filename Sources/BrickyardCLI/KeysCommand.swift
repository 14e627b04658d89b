import ArgumentParser
import Foundation
import WireProtocol

/// `brickyard keys generate DIR`: CURVE key pairs for `coordinator --curve-secret/--allow` and
/// `worker --curve-server-key/--curve-secret`.
struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Manage CURVE keys that encrypt and authenticate coordinator–worker connections.",
        subcommands: [KeysGenerateCommand.self])
}

struct KeysGenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write a CURVE key pair: DIR/NAME.secret (mode 0600) and DIR/NAME.public (one Z85 key per file).",
        discussion: """
            Typical use: `keys generate keys/coordinator --name coordinator` and `keys generate keys/workers --name \
            worker`; then `coordinator … --curve-secret keys/coordinator/coordinator.secret --allow keys/workers` and \
            `worker … --curve-server-key keys/coordinator/coordinator.public --curve-secret keys/workers/worker.secret`.
            """)

    @Argument(help: "Directory for the key files (created with mode 0700 if missing).")
    var directory: String

    @Option(name: .long, help: "Base name of the two files.")
    var name: String = "brickyard"

    @Flag(name: .long, help: "Replace existing key files of that name.")
    var force = false

    func run() throws {
        let paths = try CommandFailure.reporting { () throws -> (publicPath: String, secretPath: String) in
            try CurveKeyFiles.write(try CurveKeyPair.generate(), directory: directory, name: name, overwrite: force)
        }
        print("wrote \(paths.secretPath) (secret, mode 0600) and \(paths.publicPath) (public)")
    }
}
