import AdapterIO
import ArgumentParser
import Foundation

/// `brickyard inspect`: what is in one or more adapters (ranks, scalings, shapes, sizes, optionally norms).
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Describe PEFT LoRA adapters: base model, dtype, modules, ranks, alpha, scaling, size."
    )

    @Argument(help: "Adapter directories or bare .safetensors files.")
    var paths: [String]

    @Flag(help: "Print one JSON object instead of tables.")
    var json = false

    @Flag(help: "Also compute ‖ΔW‖_F per module (in low-rank form; reads every factor).")
    var norms = false

    @Option(help: "Rank of a bare .safetensors file (default: from the factors).")
    var rank: Int?

    @Option(help: "Alpha of a bare .safetensors file (default: its rank, i.e. scaling 1).")
    var alpha: Double?

    @Flag(help: "Accept NaN/Inf in factors when computing norms.")
    var allowNonFinite = false

    func run() throws {
        // Build every report before printing anything, so a failure leaves stdout empty.
        let summaries = try CommandFailure.reporting {
            try paths.map { path in
                try AdapterSummary(adapter: PeftAdapter.load(path: path, rank: rank, alpha: alpha, allowNonFinite: allowNonFinite),
                                   norms: norms)
            }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            let data = try encoder.encode(["adapters": summaries])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(summaries.map { InspectTable.render($0) }.joined(separator: "\n"))
        }
    }
}

/// Human-readable layout of an `AdapterSummary`.
enum InspectTable {
    static func render(_ summary: AdapterSummary) -> String {
        var lines = [summary.path]
        let facts: [(String, String)] = [
            ("base model", summary.baseModel ?? "(not set)"),
            ("task", summary.taskType ?? "(not set)"),
            ("dtype", summary.dtype),
            ("modules", String(summary.modules.count)),
            ("ranks", summary.ranks.map(String.init).joined(separator: ", ")),
            ("alpha", summary.alphas.map(number).joined(separator: ", ")),
            ("scaling", summary.scalings.map(number).joined(separator: ", ") + (summary.useRslora ? " (rsLoRA)" : "")),
            ("parameters", grouped(summary.parameters)),
            ("file size", byteSize(summary.fileSize)),
        ]
        let labelWidth = facts.map(\.0.count).max() ?? 0
        lines += facts.map { "  " + pad($0.0 + ":", labelWidth + 1) + " " + $0.1 }

        var header = ["module", "rank", "alpha", "scaling", "in", "out"]
        if summary.modules.contains(where: { $0.norm != nil }) { header.append("‖ΔW‖_F") }
        let rows = summary.modules.map { module -> [String] in
            var row = [module.name, String(module.rank), number(module.alpha), number(module.scaling),
                       String(module.inFeatures), String(module.outFeatures)]
            if let norm = module.norm { row.append(String(format: "%.6g", norm)) }
            return row
        }
        let widths = header.indices.map { column in ([header] + rows).map { $0.count > column ? $0[column].count : 0 }.max() ?? 0 }
        let format = { (row: [String]) -> String in
            "  " + row.enumerated().map { column, cell in
                column == 0 ? pad(cell, widths[column]) : String(repeating: " ", count: widths[column] - cell.count) + cell
            }.joined(separator: "  ")
        }
        lines.append("")
        lines.append(format(header))
        lines += rows.map(format)
        return lines.joined(separator: "\n")
    }

    static func pad(_ text: String, _ width: Int) -> String {
        text + String(repeating: " ", count: max(0, width - text.count))
    }

    static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(format: "%.6g", value)
    }

    static func grouped(_ value: Int) -> String {
        let digits = Array(String(value))
        var result = ""
        for (index, digit) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { result.append(",") }
            result.append(digit)
        }
        return result
    }

    static func byteSize(_ bytes: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : String(format: "%.1f", value) + " " + units[unit]
    }
}

/// How subcommands fail: one line `brickyard: <problem>` on stderr, stdout flushed, exit status 1
/// (ArgumentParser's own "Error: …" text and usage dump are bypassed by throwing `ExitCode`).
enum CommandFailure {
    static func reporting<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let exit as ExitCode {
            throw exit
        } catch {
            throw fail("\(error)")
        }
    }

    static func fail(_ message: String) -> ExitCode {
        fflush(nil) // all C streams: stdout is block-buffered when piped
        let line = "brickyard: " + message.replacingOccurrences(of: "\n", with: " ") + "\n"
        FileHandle.standardError.write(Data(line.utf8))
        return ExitCode.failure
    }
}
