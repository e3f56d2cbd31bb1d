import ControlAPI
import ControlProtocol
import Foundation
import GuestMachine
import Monitor
import Testing

/// A launch request keeps every field on its way from flexosctl to flexosd.
@Suite(.tags(.unit)) struct LaunchRequestTests {
    @Test func everyFieldSurvivesEncodingAndDecoding() throws {
        let sent = LaunchRequest(
            path: "/sets/kvstore", name: "store", memory: 1 << 26, sharedMemory: 1 << 24, timeout: 5,
            listen: ["127.0.0.1:0"], idleTimeout: 7, engine: .qemu, connect: "qemu:///system", doorbells: false)
        let received = try JSONDecoder().decode(LaunchRequest.self, from: JSONEncoder().encode(sent))
        #expect(received.path == sent.path && received.name == sent.name)
        #expect(received.memory == sent.memory && received.sharedMemory == sent.sharedMemory)
        #expect(received.timeout == sent.timeout && received.listen == sent.listen)
        // Both were once dropped: the decoder's keys left idleTimeout out.
        #expect(received.idleTimeout == 7 && received.engine == .qemu)
        #expect(received.connect == "qemu:///system" && received.doorbells == false)
    }

    @Test func anUnknownEngineIsRefused() {
        let body = Data(#"{"path": "/sets/kvstore", "engine": "bochs"}"#.utf8)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(LaunchRequest.self, from: body) }
    }
}
