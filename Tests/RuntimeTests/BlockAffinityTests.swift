import BrickyardTestSupport
import Testing
import Foundation
import Logging
@testable import Coordinator

/// Block tasks of split modules: external module tasks, rounds appended, and affinity (a block's next round goes
/// to the worker that took it; unheld blocks to anyone; stealing only from a worker with two or more distinct blocks
/// waiting).
@Suite struct BlockAffinityTests {
    let t0 = ContinuousClock.now
    let p1 = PeerID(Array("p1".utf8)), p2 = PeerID(Array("p2".utf8)), p3 = PeerID(Array("p3".utf8))

    func round(_ s: inout Scheduler, blocks: Int) -> [Int] {
        s.addTasks((0..<blocks).map { TaskKey(module: "split", block: $0 + 1) })
    }

    func finishAll(_ s: inout Scheduler, _ assignments: [Assignment]) {
        for a in assignments { #expect(s.complete(peer: a.peer, taskID: a.taskID, attempt: a.attempt) == .accepted(taskIndex: a.taskIndex)) }
    }

    @Test func blocksReturnToTheirHolders() {
        var s = Scheduler(tasks: [TaskKey(module: "split")], external: [0])
        s.join(peer: p1, workerID: "w1", now: t0)
        s.join(peer: p2, workerID: "w2", now: t0)
        #expect(s.dispatch().isEmpty)  // the split module itself is never handed out
        let first = round(&s, blocks: 4)
        var taken: [Int: PeerID] = [:]
        while !s.states[first[0]...].allSatisfy({ $0 == .done }) {
            let assignments = s.dispatch()
            for a in assignments { taken[a.taskIndex - first[0]] = a.peer }
            finishAll(&s, assignments)
        }
        // Round 2, completed in the reverse order of the workers: each block goes back to its holder.
        let second = round(&s, blocks: 4)
        var again: [Int: PeerID] = [:]
        while !s.states[second[0]...].allSatisfy({ $0 == .done }) {
            let assignments = s.dispatch()
            for a in assignments { again[a.taskIndex - second[0]] = a.peer }
            finishAll(&s, assignments.reversed())
        }
        #expect(again == taken)
        #expect(Set(taken.values) == [p1, p2])
        #expect(!s.isComplete)
        s.markDone(0)
        #expect(s.isComplete && s.doneCount == 1)
    }

    @Test func idleWorkersWaitForHeldBlocksButStealFromABacklog() {
        var s = Scheduler(tasks: [TaskKey(module: "split")], external: [0])
        s.join(peer: p1, workerID: "w1", now: t0)
        let first = round(&s, blocks: 4)
        for _ in 0..<4 { finishAll(&s, s.dispatch()) }  // p1 took every block
        #expect(first.allSatisfy { s.states[$0] == .done })
        #expect((1...4).allSatisfy { s.holder(of: TaskKey(module: "split", block: $0)) == p1 })
        // A second worker joins: p1 holds four waiting blocks, so p2 steals.
        s.join(peer: p2, workerID: "w2", now: t0)
        _ = round(&s, blocks: 4)
        let assignments = s.dispatch()
        #expect(assignments.map(\.peer) == [p1, p2])
        // With one block of p1 left waiting and p1 busy, p2 (done) does not steal it.
        finishAll(&s, assignments.filter { $0.peer == p2 })
        let next = s.dispatch()
        #expect(next.allSatisfy { $0.peer == p2 })  // p1 still has two waiting: p2 may steal one more
        finishAll(&s, next)
        #expect(s.dispatch().isEmpty)  // one left, its holder p1 is busy: wait for it
        // The holder is lost: its blocks are free for anyone.
        s.removeWorker(p1, countsAgainstTask: true)
        #expect(s.dispatch().map(\.peer).allSatisfy { $0 == p2 })
    }

    @Test("workers holding even shares of a module's blocks do not steal from each other, however many wait")
    func evenSharesAreNotStolen() {
        var s = Scheduler(tasks: [TaskKey(module: "split")], external: [0])
        s.join(peer: p1, workerID: "w1", now: t0)
        s.join(peer: p2, workerID: "w2", now: t0)
        // Round 1: each worker takes four of eight blocks, one at a time.
        let first = round(&s, blocks: 8)
        var taken: [Int: PeerID] = [:]
        while !s.states[first[0]...].allSatisfy({ $0 == .done }) {
            let assignments = s.dispatch()
            for a in assignments { taken[a.key.block] = a.peer }
            finishAll(&s, assignments)
        }
        #expect(taken.values.filter { $0 == p1 }.count == 4)
        // Round 2: p1 is busy with its first block and p2 finishes all of its own quickly; p1's three other blocks
        // wait for p1 (p2 holds as many blocks as p1), so no block is loaded twice.
        _ = round(&s, blocks: 8)
        let start = s.dispatch()
        let busy = start.first { $0.peer == p1 }
        finishAll(&s, start.filter { $0.peer == p2 })
        for _ in 0..<3 { finishAll(&s, s.dispatch()) }
        #expect(s.dispatch().isEmpty)
        #expect((1...8).allSatisfy { s.holder(of: TaskKey(module: "split", block: $0)) == taken[$0] })
        if let busy { finishAll(&s, [busy]) }
        var rest: [Assignment] = []
        repeat { rest = s.dispatch(); #expect(rest.allSatisfy { $0.peer == p1 }); finishAll(&s, rest) } while !rest.isEmpty
    }

    @Test("several restarts' tasks of one block stay with its holder: only distinct blocks are stolen")
    func restartsOfOneBlockAreNotStolen() {
        var s = Scheduler(tasks: [TaskKey(module: "split")], external: [0])
        s.join(peer: p1, workerID: "w1", now: t0)
        s.join(peer: p2, workerID: "w2", now: t0)
        // Round 0 of three restarts over two blocks: p1 takes block 1, p2 block 2.
        _ = (0..<3).map { _ in round(&s, blocks: 2) }
        let first = s.dispatch()
        #expect(first.map(\.key.block) == [1, 2] && first.map(\.peer) == [p1, p2])
        // p2 finishes and its block 2 has two more tasks: it takes those, never block 1 (p1 is busy, but block 1 is
        // one block, however many of its tasks wait).
        finishAll(&s, first.filter { $0.peer == p2 })
        for _ in 0..<2 {
            let next = s.dispatch()
            #expect(next.map(\.peer) == [p2] && next.map(\.key.block) == [2])
            finishAll(&s, next)
        }
        #expect(s.dispatch().isEmpty)  // block 1's two waiting tasks wait for p1
        finishAll(&s, first.filter { $0.peer == p1 })
        let rest = s.dispatch()
        #expect(rest.map(\.peer) == [p1] && rest.map(\.key.block) == [1])
    }
}
