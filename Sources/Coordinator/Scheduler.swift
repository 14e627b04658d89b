/// Settings of the scheduler: retries and the Paranoid Pirate liveness rule.
public struct SchedulerConfiguration: Sendable, Equatable {
    /// Failures plus lost workers a task may suffer before the job fails.
    public var maxAttempts: Int
    public var heartbeatInterval: Duration
    /// Intervals without hearing from a worker before it is declared dead.
    public var liveness: Int

    public init(maxAttempts: Int = 3, heartbeatInterval: Duration = .seconds(1), liveness: Int = 3) {
        self.maxAttempts = max(1, maxAttempts)
        self.heartbeatInterval = heartbeatInterval
        self.liveness = max(1, liveness)
    }

    /// How long a worker may stay silent.
    public var expiry: Duration { heartbeatInterval * liveness }
}

/// One task handed to one worker: what the server must send.
public struct Assignment: Sendable, Equatable {
    public var peer: PeerID
    public var taskIndex: Int
    public var key: TaskKey
    public var taskID: UInt64
    public var attempt: UInt32
}

/// What happened to a result or failure message reported by a peer.
public enum ReportOutcome: Sendable, Equatable {
    /// The peer held this (task, attempt): the report is accepted.
    case accepted(taskIndex: Int)
    /// Late, duplicate, or for a task the peer does not hold: ignore it.
    case dropped(reason: String)
}

/// The pure state machine of a distributed job: which task goes to which worker, attempts, liveness and
/// the end of the job. It does no I/O and reads no clock (callers pass `now`), so every rule is unit-tested
/// without sockets. Tasks are handed out lowest plan index first, one at a time per worker.
///
/// Split modules: their plan index is `external` (the coordinator drives their k-means and calls `markDone`), and
/// each round adds one task per block (`addTasks`), appended after the plan's modules. Block tasks have affinity:
/// a block goes back to the worker that last took it; an idle worker takes unheld blocks (or those of a lost
/// worker), and steals from a worker that still has two or more of its blocks waiting.
public struct Scheduler: Sendable {
    /// Where one task stands.
    public enum TaskState: Sendable, Equatable {
        case queued
        case running(peer: PeerID, attempt: UInt32)
        case done
        /// A split module: not handed out itself; done when its last round is reduced (`markDone`).
        case external
    }

    struct WorkerState: Sendable {
        var workerID: String
        var lastHeard: ContinuousClock.Instant
        var taskIndex: Int?
    }

    public let configuration: SchedulerConfiguration
    public private(set) var tasks: [TaskKey]
    /// The plan's modules are tasks 0..<moduleCount; block tasks follow.
    public let moduleCount: Int
    public private(set) var states: [TaskState]
    /// Failures plus lost workers per task.
    public private(set) var failures: [Int]
    /// Attempts handed out per task (the attempt number of the latest assignment).
    public private(set) var attemptsIssued: [UInt32]
    /// Worker that delivered each finished task (nil for tasks resumed from a checkpoint).
    public private(set) var completedBy: [String?]
    /// Tasks handed out again after a failure or a lost worker.
    public private(set) var retries = 0
    /// Set when a task exhausted its attempts; no further tasks are handed out.
    public private(set) var failure: CoordinatorError?
    /// Set by `drain()` (SIGTERM): running tasks may finish, nothing new is handed out.
    public private(set) var draining = false

    private var queue: [Int]
    private var workers: [PeerID: WorkerState] = [:]
    /// Join order, so dispatch order does not depend on hashing.
    private var workerOrder: [PeerID] = []
    /// The worker that last took each block (affinity); keys of whole modules never appear.
    private var holders: [TaskKey: PeerID] = [:]

    /// `finished` holds plan indices already done (resumed from a checkpoint); `external` those of split modules.
    public init(tasks: [TaskKey], finished: Set<Int> = [], external: Set<Int> = [],
                configuration: SchedulerConfiguration = SchedulerConfiguration()) {
        self.configuration = configuration
        self.tasks = tasks
        moduleCount = tasks.count
        states = tasks.indices.map { finished.contains($0) ? .done : external.contains($0) ? .external : .queued }
        failures = Array(repeating: 0, count: tasks.count)
        attemptsIssued = Array(repeating: 0, count: tasks.count)
        completedBy = Array(repeating: nil, count: tasks.count)
        queue = tasks.indices.filter { !finished.contains($0) && !external.contains($0) }
    }

    /// Appends block tasks (one round of a split module), queued; returns their indices (= task ids).
    public mutating func addTasks(_ keys: [TaskKey]) -> [Int] {
        let indices = Array(tasks.count..<(tasks.count + keys.count))
        tasks += keys
        states += keys.map { _ in .queued }
        failures += keys.map { _ in 0 }
        attemptsIssued += keys.map { _ in 0 }
        completedBy += keys.map { _ in nil }
        queue += indices
        return indices
    }

    /// A split module's last round was reduced and its record written.
    public mutating func markDone(_ index: Int) {
        guard states.indices.contains(index), states[index] == .external else { return }
        states[index] = .done
    }

    /// The worker holding a block (for tests and logs).
    public func holder(of key: TaskKey) -> PeerID? { holders[key] }

    // MARK: job state

    /// Plan modules done (block tasks are not counted).
    public var doneCount: Int { states[0..<moduleCount].count { $0 == .done } }
    public var isComplete: Bool { failure == nil && states.allSatisfy { $0 == .done } }
    /// True when the server loop should stop: finished, failed, or drained with nothing running.
    public var isFinished: Bool { isComplete || failure != nil || (draining && runningCount == 0) }
    public var runningCount: Int { states.count { if case .running = $0 { true } else { false } } }
    public var aliveWorkers: Int { workers.count }
    public var peers: [PeerID] { workerOrder }

    public func workerID(of peer: PeerID) -> String? { workers[peer]?.workerID }

    /// The task index a peer is running, if any.
    public func runningTask(of peer: PeerID) -> Int? { workers[peer]?.taskIndex }

    // MARK: workers

    /// A worker said hello. A peer already known (reconnected under the same identity) loses its old task,
    /// which counts as a lost worker for that task.
    public mutating func join(peer: PeerID, workerID: String, now: ContinuousClock.Instant) {
        if workers[peer] != nil { removeWorker(peer, countsAgainstTask: true) }
        workers[peer] = WorkerState(workerID: workerID, lastHeard: now, taskIndex: nil)
        workerOrder.append(peer)
    }

    public func isKnown(_ peer: PeerID) -> Bool { workers[peer] != nil }

    /// Any message from a known peer proves it alive. Returns false for unknown peers.
    @discardableResult
    public mutating func heard(from peer: PeerID, now: ContinuousClock.Instant) -> Bool {
        guard workers[peer] != nil else { return false }
        workers[peer]?.lastHeard = now
        return true
    }

    /// A worker left or became unreachable. Its task goes back to the queue; a graceful disconnect does not
    /// count against the task, a lost worker does. Returns the requeued task index.
    @discardableResult
    public mutating func removeWorker(_ peer: PeerID, countsAgainstTask: Bool) -> Int? {
        guard let worker = workers.removeValue(forKey: peer) else { return nil }
        workerOrder.removeAll { $0 == peer }
        guard let index = worker.taskIndex else { return nil }
        if countsAgainstTask {
            recordFailure(index, reason: "worker \(worker.workerID) was lost")
        } else {
            requeue(index)
        }
        return index
    }

    /// Workers silent for longer than the liveness allows are removed (their tasks requeued, counted).
    public mutating func expireWorkers(now: ContinuousClock.Instant) -> [PeerID] {
        let deadline = configuration.expiry
        let dead = workerOrder.filter { peer in
            guard let worker = workers[peer] else { return false }
            return now - worker.lastHeard > deadline
        }
        for peer in dead { removeWorker(peer, countsAgainstTask: true) }
        return dead
    }

    // MARK: tasks

    /// Hands queued tasks to idle workers in join order: each takes the lowest queued block it holds, else the
    /// lowest task nobody alive holds, else steals the lowest block of a worker with two or more *distinct* blocks
    /// waiting (a split module's restarts queue several tasks of one block: those stay with its holder, which has
    /// the block loaded, instead of making a second worker load it) and at least two blocks more than the thief
    /// holds. Stealing moves blocks towards an even share (a worker that joins late takes its part); between
    /// workers already holding even shares it would only trade one round's wait for a block load (~0.4 s for a
    /// 140 MB block), and with many short rounds both workers ended up loading every block.
    public mutating func dispatch() -> [Assignment] {
        guard failure == nil, !draining else { return [] }
        var assignments: [Assignment] = []
        for peer in workerOrder where workers[peer]?.taskIndex == nil {
            guard !queue.isEmpty else { break }
            guard let position = choose(for: peer) else { continue }
            let index = queue.remove(at: position)
            if tasks[index].block > 0 { holders[tasks[index]] = peer }
            attemptsIssued[index] += 1
            let attempt = attemptsIssued[index]
            states[index] = .running(peer: peer, attempt: attempt)
            workers[peer]?.taskIndex = index
            assignments.append(Assignment(peer: peer, taskIndex: index, key: tasks[index], taskID: UInt64(index), attempt: attempt))
        }
        return assignments
    }

    /// Position in the queue of the task `peer` should take next, if any.
    private func choose(for peer: PeerID) -> Int? {
        func holder(_ index: Int) -> PeerID? {
            guard tasks[index].block > 0, let holder = holders[tasks[index]], workers[holder] != nil else { return nil }
            return holder
        }
        if let own = queue.firstIndex(where: { holder($0) == peer }) { return own }
        if let free = queue.firstIndex(where: { holder($0) == nil }) { return free }
        var waiting: [PeerID: Set<TaskKey>] = [:]
        for index in queue { if let holder = holder(index) { waiting[holder, default: []].insert(tasks[index]) } }
        // Blocks each live worker holds, per module.
        var held: [String: [PeerID: Int]] = [:]
        for (key, holder) in holders where workers[holder] != nil { held[key.module, default: [:]][holder, default: 0] += 1 }
        return queue.firstIndex { index in
            guard let victim = holder(index), (waiting[victim]?.count ?? 0) >= 2 else { return false }
            let module = held[tasks[index].module] ?? [:]
            return (module[victim] ?? 0) >= (module[peer] ?? 0) + 2
        }
    }

    /// Checks that `peer` currently holds (taskID, attempt): the gate for every result chunk.
    public func holds(peer: PeerID, taskID: UInt64, attempt: UInt32) -> ReportOutcome {
        guard workers[peer] != nil else { return .dropped(reason: "unknown peer") }
        guard taskID < UInt64(tasks.count) else { return .dropped(reason: "no task \(taskID) in this job") }
        let index = Int(taskID)
        guard case .running(let holder, let current) = states[index] else {
            return .dropped(reason: states[index] == .done ? "task already done" : "task not running")
        }
        guard holder == peer else { return .dropped(reason: "task is held by another worker") }
        guard current == attempt else { return .dropped(reason: "stale attempt \(attempt) (current \(current))") }
        return .accepted(taskIndex: index)
    }

    /// The peer's result was verified and checkpointed.
    public mutating func complete(peer: PeerID, taskID: UInt64, attempt: UInt32) -> ReportOutcome {
        let outcome = holds(peer: peer, taskID: taskID, attempt: attempt)
        guard case .accepted(let index) = outcome else { return outcome }
        states[index] = .done
        completedBy[index] = workers[peer]?.workerID
        workers[peer]?.taskIndex = nil
        return outcome
    }

    /// The peer reported a failure, or its result failed verification. Non-retryable errors fail the job at once.
    /// A retryable failure that is not the task's fault (`countsAgainstTask` false: the worker lacked a round payload
    /// the coordinator believed it held) requeues the task without using up one of its attempts.
    public mutating func fail(peer: PeerID, taskID: UInt64, attempt: UInt32, error: String, retryable: Bool,
                              countsAgainstTask: Bool = true) -> ReportOutcome {
        let outcome = holds(peer: peer, taskID: taskID, attempt: attempt)
        guard case .accepted(let index) = outcome else { return outcome }
        workers[peer]?.taskIndex = nil
        if retryable && !countsAgainstTask {
            retries += 1
            requeue(index)
        } else if retryable {
            recordFailure(index, reason: error)
        } else {
            failures[index] += 1
            states[index] = .queued
            failJob(index, reason: "non-retryable error: \(error)")
        }
        return outcome
    }

    /// Fails the job for a reason outside any one task (a split module's reduction or record could not be made).
    public mutating func failJob(reason: String) {
        guard failure == nil else { return }
        failure = CoordinatorError(.taskFailed, reason)
    }

    /// Stop handing out tasks (SIGTERM/SIGINT).
    public mutating func drain() { draining = true }

    private mutating func recordFailure(_ index: Int, reason: String) {
        failures[index] += 1
        if failures[index] >= configuration.maxAttempts {
            states[index] = .queued
            failJob(index, reason: reason)
        } else {
            retries += 1
            requeue(index)
        }
    }

    private mutating func failJob(_ index: Int, reason: String) {
        guard failure == nil else { return }
        failure = CoordinatorError(.taskFailed,
            "module \(tasks[index]) failed after \(failures[index]) attempt(s) (max \(configuration.maxAttempts)): \(reason)")
    }

    private mutating func requeue(_ index: Int) {
        states[index] = .queued
        let position = queue.firstIndex { $0 > index } ?? queue.count
        queue.insert(index, at: position)
    }
}
