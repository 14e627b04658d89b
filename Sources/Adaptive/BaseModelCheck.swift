import AdapterIO
import Foundation
import MergeEngine

/// Checks a base model directory before any evaluator starts: config, tokenizer and weights present, and every
/// adapter module naming a linear layer of the base with the adapter's shape (read from the safetensors headers,
/// so no model is loaded).
public enum BaseModelCheck {
    static let tokenizerFiles = ["tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt"]

    /// `file` and `key` name where the path came from in errors: a job file and `base_model`, or a command-line
    /// option with no key (`--base-model: … is not a directory`).
    public static func directory(_ path: String, file: String, key: String = "base_model") throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw JobFileError(file: file, key: key, "\(path) is not a directory")
        }
        guard FileManager.default.fileExists(atPath: path + "/config.json") else {
            throw JobFileError(file: file, key: key, "\(path) has no config.json (not a Hugging Face model directory)")
        }
        guard tokenizerFiles.contains(where: { FileManager.default.fileExists(atPath: path + "/" + $0) }) else {
            throw JobFileError(file: file, key: key, "\(path) has no tokenizer (none of \(tokenizerFiles.joined(separator: ", ")))")
        }
        guard !(try weightFiles(path)).isEmpty else {
            throw JobFileError(file: file, key: key, "\(path) has no *.safetensors weights")
        }
    }

    static func weightFiles(_ path: String) throws -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.filter { $0.hasSuffix(".safetensors") }.sorted().map { path + "/" + $0 }
    }

    /// Shapes [out, in] of every 2-D weight of the base model, by tensor name.
    public static func weightShapes(_ path: String) throws -> [String: [Int]] {
        var shapes: [String: [Int]] = [:]
        for file in try weightFiles(path) {
            let header = try SafetensorsFile(path: file)
            for tensor in header.tensors where tensor.shape.count == 2 { shapes[tensor.name] = tensor.shape }
        }
        return shapes
    }

    /// Every module of every adapter must be a base linear layer of the same shape.
    public static func adaptersFit(_ adapters: [LoadedAdapter], baseModel: String) throws {
        let shapes = try weightShapes(baseModel)
        for adapter in adapters {
            for module in adapter.modules {
                let weight = PeftNames.strippingWrapperPrefix(module.name) + ".weight"
                guard let shape = shapes[weight] else {
                    throw AdaptError("\(adapter.path): module \(module.name) has no layer \(weight) in the base model \(baseModel)")
                }
                guard shape == [module.outFeatures, module.inFeatures] else {
                    throw AdaptError("\(adapter.path): module \(module.name) is [\(module.outFeatures), \(module.inFeatures)] but the base layer \(weight) is \(shape)")
                }
            }
        }
    }
}
