import Foundation
import Testing
@testable import WireProtocol

/// The wake-up a computing thread raises so the worker's socket thread leaves `zmq_poll` at once.
@Suite("Wake signal polled beside sockets")
struct WakeSignalTests {
    @Test("raised from another thread, it ends a long poll with its flag set and the socket's clear; cleared, it is not readable; raising twice is one wake-up")
    func wakesAPollAndClears() throws {
        let context = try ZMQContext()
        let socket = try ZMQSocket.dealer(context: context, identity: Array("wake-test".utf8), lingerMilliseconds: 0)
        let wake = try WakeSignal()
        #expect(try ZMQPoll.readable([socket], fileDescriptors: [wake.fileDescriptor], timeoutMilliseconds: 0) == [false, false])

        let raiser = Thread { Thread.sleep(forTimeInterval: 0.05); wake.raise() }
        raiser.start()
        // 60 s: without the signal this poll would run to its timeout and the test would fail on the flags below.
        let flags = try ZMQPoll.readable([socket], fileDescriptors: [wake.fileDescriptor], timeoutMilliseconds: 60_000)
        #expect(flags == [false, true])

        wake.clear()
        #expect(try ZMQPoll.readable([socket], fileDescriptors: [wake.fileDescriptor], timeoutMilliseconds: 0) == [false, false])
        wake.raise()
        wake.raise()
        #expect(try ZMQPoll.readable([], fileDescriptors: [wake.fileDescriptor], timeoutMilliseconds: 0) == [true])
        wake.clear()
        #expect(try ZMQPoll.readable([], fileDescriptors: [wake.fileDescriptor], timeoutMilliseconds: 0) == [false])
    }
}
