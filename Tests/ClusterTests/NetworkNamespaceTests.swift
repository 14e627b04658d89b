import BrickyardTestSupport
import Coordinator
import Foundation
import MergeEngine
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Several hosts on one machine: network namespaces joined by veth pairs (iproute2). Every address lives
/// inside a namespace this test made (10.200.x.0/24), names are unique per run, and everything is removed
/// at the end.
final class HostNetwork: @unchecked Sendable {
    // @unchecked: owned by one test.
    struct Host {
        let namespace: String
        let interface: String
        let address: String
    }

    let tag: String
    private(set) var namespaces: [String] = []

    init() {
        tag = "by" + String(UInt32.random(in: 0..<0x10000), radix: 16)
    }

    /// Whether this machine lets us make namespaces (root, iproute2, a kernel that allows it), and if not, whether
    /// the reason is the kernel's refusal (the one reason CI may skip for).
    static let availability: (ok: Bool, kernelRefused: Bool, reason: String) = {
        guard getuid() == 0 else { return (false, false, "needs root to create network namespaces") }
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") || FileManager.default.isExecutableFile(atPath: "/sbin/ip")
            || FileManager.default.isExecutableFile(atPath: "/usr/bin/ip") else { return (false, false, "iproute2 (ip) is not installed") }
        let probe = "byprobe\(getpid())"
        guard let added = try? runTool("ip", ["netns", "add", probe]), added.status == 0 else {
            return (false, true, "the kernel refused a network namespace")
        }
        _ = try? runTool("ip", ["netns", "del", probe])
        return (true, false, "")
    }()

    /// Runs when namespaces work; skipped with the reason printed otherwise, except in CI (CI=true, as root),
    /// where only the kernel's refusal skips: a missing `ip` or root there fails the test instead.
    static let enabled: Bool = {
        if availability.ok { return true }
        if ProcessInfo.processInfo.environment["CI"] == "true" && !availability.kernelRefused {
            print("network namespace tests required in CI but unavailable: \(availability.reason)")
            return true
        }
        print("network namespace tests skipped: \(availability.reason)")
        return false
    }()

    func ip(_ arguments: [String]) throws {
        let result = try runTool("ip", arguments)
        guard result.status == 0 else { throw NamespaceError(description: "ip \(arguments.joined(separator: " ")): \(result.stderr)") }
    }

    /// A namespace with its loopback up.
    func namespace(_ suffix: String) throws -> String {
        let name = "\(tag)\(suffix)"
        try ip(["netns", "add", name])
        namespaces.append(name)
        try ip(["-n", name, "link", "set", "lo", "up"])
        return name
    }

    /// A point-to-point link between two namespaces on subnet 10.200.`subnet`.0/24: .1 on `left`, .2 on `right`.
    func link(_ left: String, _ right: String, subnet: Int, name: String) throws -> (left: Host, right: Host) {
        let leftInterface = "\(tag)\(name)a", rightInterface = "\(tag)\(name)b"
        try ip(["link", "add", leftInterface, "type", "veth", "peer", "name", rightInterface])
        try ip(["link", "set", leftInterface, "netns", left])
        try ip(["link", "set", rightInterface, "netns", right])
        try ip(["-n", left, "addr", "add", "10.200.\(subnet).1/24", "dev", leftInterface])
        try ip(["-n", right, "addr", "add", "10.200.\(subnet).2/24", "dev", rightInterface])
        try ip(["-n", left, "link", "set", leftInterface, "up"])
        try ip(["-n", right, "link", "set", rightInterface, "up"])
        return (Host(namespace: left, interface: leftInterface, address: "10.200.\(subnet).1"),
                Host(namespace: right, interface: rightInterface, address: "10.200.\(subnet).2"))
    }

    /// `brickyard ARGS` inside `namespace`.
    func launch(in namespace: String, _ arguments: [String], log: String, environment: [String: String] = [:]) throws -> Child {
        try Child(["ip", "netns", "exec", namespace, BrickyardExecutable.path ?? "brickyard"] + arguments, log: log,
                  environment: environment)
    }

    /// Deleting a namespace removes its veth ends (and so the pairs).
    func remove() {
        for name in namespaces.reversed() { _ = try? runTool("ip", ["netns", "del", name]) }
        namespaces = []
    }

    struct NamespaceError: Error, CustomStringConvertible { var description: String }
}

@Suite(.serialized, .enabled(if: HostNetwork.enabled, "needs network namespaces (root, iproute2)"))
struct NetworkNamespaceTests {
    /// Workers give up after this many connections without a welcome (reconnecting at most every second), so
    /// none outlives a coordinator that died or a test that crashed by more than about half a minute.
    static let bounded = ["--reconnect-max-ms", "1000", "--max-failed-connections", "30"]

    /// Three hosts besides the coordinator's, CURVE on (keys from `brickyard keys generate`): two workers with an
    /// allowed key, one of whose links is cut mid-task, and an intruder with an unknown key on a third host. The
    /// intruder is refused and says why; the job finishes with the bytes of a local merge.
    @Test func workerWhoseLinkIsCutMidTaskIsReplacedAndAnUnknownKeyIsRefused() throws {
        try #require(HostNetwork.availability.ok, "\(HostNetwork.availability.reason)")
        let scratch = try TestDirectory("netns")
        defer { scratch.remove() }
        let network = HostNetwork()
        var children: [Child] = []
        defer {
            for child in children { child.stop() }
            network.remove()
        }
        let job = try scratch.writeJob()
        let reference = scratch.path + "/local"
        let local = try BrickyardExecutable.run(["merge", job, "--out", reference, "--workers", "2", "--quiet"])
        try #require(local.status == 0, "\(local.stderr)")
        let keys = scratch.path + "/keys"
        for (directory, name) in [("coordinator", "coordinator"), ("workers", "worker"), ("intruder", "intruder")] {
            let made = try BrickyardExecutable.run(["keys", "generate", "\(keys)/\(directory)", "--name", name])
            try #require(made.status == 0, "\(made.stderr)")
        }
        let workerKeys = ["--curve-server-key", "\(keys)/coordinator/coordinator.public", "--curve-secret", "\(keys)/workers/worker.secret"]

        let subnet = 3 * Int.random(in: 1..<80)
        let coordinatorHost = try network.namespace("c")
        let first = try network.namespace("w1")
        let second = try network.namespace("w2")
        let third = try network.namespace("x3")
        let toFirst = try network.link(coordinatorHost, first, subnet: subnet, name: "1")
        let toSecond = try network.link(coordinatorHost, second, subnet: subnet + 1, name: "2")
        let toThird = try network.link(coordinatorHost, third, subnet: subnet + 2, name: "3")

        let out = scratch.path + "/out"
        let endpointFile = scratch.path + "/endpoint"
        let coordinator = try network.launch(in: coordinatorHost, [
            "coordinator", job, "--bind", "tcp://0.0.0.0:*", "--out", out, "--checkpoint", scratch.path + "/checkpoint",
            "--endpoint-file", endpointFile, "--status-file", scratch.path + "/status.json",
            "--curve-secret", "\(keys)/coordinator/coordinator.secret", "--allow", "\(keys)/workers",
            "--heartbeat-ms", "300", "--liveness", "4", "--log-level", "info"], log: scratch.path + "/coordinator.log")
        children.append(coordinator)
        var bound = ""
        _ = eventually { bound = scratch.read("endpoint").trimmingCharacters(in: .whitespacesAndNewlines); return !bound.isEmpty }
        let port = try #require(bound.split(separator: ":").last.map(String.init), "no endpoint: \(coordinator.output)")
        #expect(coordinator.output.contains("CURVE on"), "\(coordinator.output)")

        // The intruder: the coordinator's right public key, but its own key is not in the allowed directory.
        let intruder = try network.launch(in: third, ["worker", "--connect", "tcp://\(toThird.left.address):\(port)", "--id", "x3",
                                                      "--curve-server-key", "\(keys)/coordinator/coordinator.public",
                                                      "--curve-secret", "\(keys)/intruder/intruder.secret"] + Self.bounded,
                                          log: scratch.path + "/x3.log")
        children.append(intruder)
        // Each worker reaches the coordinator through its own link; tasks are slowed so the cut lands mid-task.
        let slow = ["BRICKYARD_TEST_WORKER_FAULTS": "slow-tasks=700"]
        let doomed = try network.launch(in: first, ["worker", "--connect", "tcp://\(toFirst.left.address):\(port)", "--id", "w1",
                                                    "--heartbeat-ms", "300", "--liveness", "4"] + workerKeys + Self.bounded,
                                        log: scratch.path + "/w1.log", environment: slow)
        children.append(doomed)
        let survivor = try network.launch(in: second, ["worker", "--connect", "tcp://\(toSecond.left.address):\(port)", "--id", "w2",
                                                       "--heartbeat-ms", "300", "--liveness", "4"] + workerKeys + Self.bounded,
                                          log: scratch.path + "/w2.log", environment: slow)
        children.append(survivor)

        // Cut w1's link while it holds a task.
        let holding = eventually(timeout: .seconds(60), interval: 0.02) { doomed.output.contains("task received") }
        try #require(holding, "w1 never got a task: \(doomed.output) \(coordinator.output)")
        try network.ip(["-n", first, "link", "set", toFirst.right.interface, "down"])

        // The intruder is refused, says why (naming its key) and exits 4, without ever being given work.
        #expect(intruder.wait(timeout: .seconds(60)) == 4, "\(intruder.output)")
        let intruderKey = try String(contentsOfFile: "\(keys)/intruder/intruder.public", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(intruder.output.contains("coordinator refused this worker's CURVE key") && intruder.output.contains(intruderKey),
                "\(intruder.output)")
        #expect(!intruder.output.contains("task received"))

        let status = coordinator.wait(timeout: .seconds(120))
        #expect(status == 0, "\(coordinator.output)")
        #expect(survivor.wait(timeout: .seconds(20)) == 0, "\(survivor.output)")
        let merged = FileManager.default.contents(atPath: out + "/adapter_model.safetensors")
        #expect(merged != nil && merged == FileManager.default.contents(atPath: reference + "/adapter_model.safetensors"))
        #expect(coordinator.output.contains("missed its heartbeats"), "\(coordinator.output)")
        #expect(coordinator.output.contains("refused a worker with an unknown CURVE key")
                && coordinator.output.contains(toThird.right.address), "\(coordinator.output)")
        #expect(!coordinator.output.contains("WITHOUT encryption"))
        let report = try MergeReport.decode(try #require(FileManager.default.contents(atPath: out + "/merge-report.json")))
        #expect((report.runtime?.retries ?? 0) >= 1)
        // Both allowed hosts took part; the one cut off finished fewer modules than it was given; the intruder none.
        let byWorker = Dictionary(grouping: report.modules.compactMap(\.workerID), by: { $0 }).mapValues(\.count)
        #expect((byWorker["w2"] ?? 0) > 0)
        #expect(byWorker["x3"] == nil)
        let started = doomed.output.components(separatedBy: "task received").count - 1
        #expect((byWorker["w1"] ?? 0) < started, "w1 started \(started) tasks: \(byWorker)")
    }
}
