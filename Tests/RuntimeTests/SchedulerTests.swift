import Testing
@testable import Coordinator

@Suite struct SchedulerTests {
    let t0 = ContinuousClock.now
    let p1 = PeerID(Array("p1".utf8)), p2 = PeerID(Array("p2".utf8)), p3 = PeerID(Array("p3".utf8))

    func scheduler(_ count: Int, finished: Set<Int> = [], maxAttempts: Int = 3) -> Scheduler {
        Scheduler(tasks: (0..<count).map { TaskKey(module: "m\($0)") }, finished: finished,
                  configuration: SchedulerConfiguration(maxAttempts: maxAttempts, heartbeatInterval: .seconds(1), liveness: 3))
    }

    @Test func dispatchesInModuleOrderOneTaskPerWorker() {
        var s = scheduler(5)
        s.join(peer: p1, workerID: "w1", now: t0)
        s.join(peer: p2, workerID: "w2", now: t0)
        let first = s.dispatch()
        #expect(first.map(\.taskIndex) == [0, 1])
        #expect(first.map(\.peer) == [p1, p2])
        #expect(first.allSatisfy { $0.attempt == 1 })
        #expect(s.dispatch().isEmpty)
        #expect(s.complete(peer: p2, taskID: 1, attempt: 1) == .accepted(taskIndex: 1))
        #expect(s.dispatch().map(\.taskIndex) == [2])
    }

    @Test func resumedTasksAreNotDispatched() {
        var s = scheduler(4, finished: [0, 2])
        s.join(peer: p1, workerID: "w1", now: t0)
        s.join(peer: p2, workerID: "w2", now: t0)
        #expect(s.dispatch().map(\.taskIndex) == [1, 3])
        _ = s.complete(peer: p1, taskID: 1, attempt: 1)
        _ = s.complete(peer: p2, taskID: 3, attempt: 1)
        #expect(s.isComplete)
        #expect(s.completedBy == [nil, "w1", nil, "w2"])
    }

    @Test func lateDuplicateAndForeignResultsAreDropped() {
        var s = scheduler(2)
        s.join(peer: p1, workerID: "w1", now: t0)
        s.join(peer: p2, workerID: "w2", now: t0)
        _ = s.dispatch()
        // p2 does not hold task 0; wrong attempt; unknown task; unknown peer.
        guard case .dropped = s.complete(peer: p2, taskID: 0, attempt: 1) else { Issue.record("foreign accepted"); return }
        guard case .dropped = s.complete(peer: p1, taskID: 0, attempt: 2) else { Issue.record("stale accepted"); return }
        guard case .dropped = s.complete(peer: p1, taskID: 99, attempt: 1) else { Issue.record("unknown task accepted"); return }
        guard case .dropped = s.complete(peer: p3, taskID: 0, attempt: 1) else { Issue.record("unknown peer accepted"); return }
        #expect(s.complete(peer: p1, taskID: 0, attempt: 1) == .accepted(taskIndex: 0))
        guard case .dropped = s.complete(peer: p1, taskID: 0, attempt: 1) else { Issue.record("duplicate accepted"); return }
        #expect(s.doneCount == 1)
    }

    @Test func deadWorkerTaskIsRequeuedAndOldAttemptDropped() {
        var s = scheduler(2)
        s.join(peer: p1, workerID: "w1", now: t0)
        _ = s.dispatch()
        s.join(peer: p2, workerID: "w2", now: t0 + .seconds(2))
        #expect(s.dispatch().map(\.taskIndex) == [1])
        s.heard(from: p2, now: t0 + .seconds(3.5))
        // p1 silent for > 3 s: dead; p2 heard 0.5 s ago.
        #expect(s.expireWorkers(now: t0 + .seconds(4)) == [p1])
        #expect(s.retries == 1)
        _ = s.complete(peer: p2, taskID: 1, attempt: 1)
        let again = s.dispatch()
        #expect(again == [Assignment(peer: p2, taskIndex: 0, key: TaskKey(module: "m0"), taskID: 0, attempt: 2)])
        // The dead peer's late result for attempt 1 is dropped.
        guard case .dropped = s.complete(peer: p1, taskID: 0, attempt: 1) else { Issue.record("late accepted"); return }
        #expect(s.complete(peer: p2, taskID: 0, attempt: 2) == .accepted(taskIndex: 0))
        #expect(s.isComplete && s.isFinished)
    }

    @Test(arguments: [1, 3, 5])
    func taskExhaustingAttemptsFailsTheJobNamingTheModule(maxAttempts: Int) {
        var s = scheduler(3, maxAttempts: maxAttempts)
        s.join(peer: p1, workerID: "w1", now: t0)
        var dispatched = 0
        while s.failure == nil {
            let assignments = s.dispatch()
            #expect(assignments.map(\.taskIndex) == [0])
            guard let a = assignments.first else { break }
            dispatched += 1
            // Alternate failures and lost workers: both count.
            if dispatched % 2 == 1 {
                _ = s.fail(peer: p1, taskID: a.taskID, attempt: a.attempt, error: "boom", retryable: true)
            } else {
                s.removeWorker(p1, countsAgainstTask: true)
                s.join(peer: p1, workerID: "w1", now: t0)
            }
        }
        #expect(dispatched == maxAttempts)
        #expect(s.failure?.code == .taskFailed)
        #expect(s.failure?.description.contains("m0") == true)
        #expect(s.isFinished && !s.isComplete)
        #expect(s.dispatch().isEmpty)
    }

    @Test func nonRetryableFailureFailsAtOnce() {
        var s = scheduler(2)
        s.join(peer: p1, workerID: "w1", now: t0)
        _ = s.dispatch()
        _ = s.fail(peer: p1, taskID: 0, attempt: 1, error: "bad shape", retryable: false)
        #expect(s.failure?.description.contains("bad shape") == true)
    }

    @Test func gracefulLeaveRequeuesWithoutCounting() {
        var s = scheduler(1, maxAttempts: 1)
        s.join(peer: p1, workerID: "w1", now: t0)
        _ = s.dispatch()
        #expect(s.removeWorker(p1, countsAgainstTask: false) == 0)
        #expect(s.failure == nil && s.failures == [0])
        s.join(peer: p2, workerID: "w2", now: t0)
        #expect(s.dispatch().first?.attempt == 2)
    }

    @Test func rejoinUnderSameIdentityLosesTheOldTask() {
        var s = scheduler(1)
        s.join(peer: p1, workerID: "w1", now: t0)
        _ = s.dispatch()
        s.join(peer: p1, workerID: "w1", now: t0 + .seconds(1))
        #expect(s.failures == [1])
        #expect(s.aliveWorkers == 1)
        #expect(s.dispatch().first?.attempt == 2)
    }

    @Test func drainingStopsDispatchAndFinishesWhenIdle() {
        var s = scheduler(3)
        s.join(peer: p1, workerID: "w1", now: t0)
        _ = s.dispatch()
        s.drain()
        #expect(!s.isFinished)
        _ = s.complete(peer: p1, taskID: 0, attempt: 1)
        #expect(s.dispatch().isEmpty)
        #expect(s.isFinished && !s.isComplete)
    }

    @Test func dispatchOrderIsDeterministicAfterRequeue() {
        var s = scheduler(4)
        s.join(peer: p1, workerID: "w1", now: t0)
        s.join(peer: p2, workerID: "w2", now: t0)
        _ = s.dispatch()  // 0 → p1, 1 → p2
        _ = s.fail(peer: p2, taskID: 1, attempt: 1, error: "x", retryable: true)
        // Task 1 goes before 2 and 3 again.
        #expect(s.dispatch().map(\.taskIndex) == [1])
    }

    @Test("a failure that is not the task's fault (a round payload the worker lacked) requeues without using an attempt")
    func failuresNotCountingAgainstTheTask() {
        var s = scheduler(1, maxAttempts: 2)
        s.join(peer: p1, workerID: "w1", now: t0)
        for _ in 0..<5 {
            let a = s.dispatch()
            #expect(a.count == 1)
            _ = s.fail(peer: p1, taskID: a[0].taskID, attempt: a[0].attempt, error: "payload not held", retryable: true,
                       countsAgainstTask: false)
        }
        #expect(s.failure == nil && s.retries == 5)
        // Counted failures still end the job at the limit.
        for _ in 0..<2 {
            let a = s.dispatch()
            _ = s.fail(peer: p1, taskID: a[0].taskID, attempt: a[0].attempt, error: "boom", retryable: true)
        }
        #expect(s.failure != nil)
    }
}
