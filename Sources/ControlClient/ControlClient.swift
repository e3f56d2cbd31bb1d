import ControlProtocol
import FoundationEssentials
import Glibc
import NIOCore
import NIOHTTP1
import NIOPosix

/// Why a request to flexosd failed.
public enum ClientError: Error, CustomStringConvertible {
    case noDaemon(socket: String)
    case permissionDenied(socket: String)
    case connection(socket: String, String)
    /// flexosd answered with an error status and message.
    case refused(status: Int, message: String)
    case unexpectedReply(String)

    public var description: String {
        switch self {
        case .noDaemon(let socket):
            return
                "no flexosd is listening on \(socket) (start one with `flexosd --socket \(socket)`, or pass --socket)"
        case .permissionDenied(let socket):
            return "no permission to use \(socket): run as the user (or group) flexosd was started for"
        case .connection(let socket, let detail): return "talking to flexosd on \(socket) failed: \(detail)"
        case .refused(_, let message): return message
        case .unexpectedReply(let detail): return "flexosd sent a reply this flexosctl does not understand: \(detail)"
        }
    }
}

/// An HTTP/1.1 client for flexosd's control API on its Unix socket (SwiftNIO).
public struct ControlClient: Sendable {
    public let socketPath: String

    public init(socketPath: String) { self.socketPath = socketPath }

    /// A reply: its status and body.
    public struct Reply: Sendable {
        public let status: Int
        public let body: [UInt8]
    }

    /// Sends a request and waits for the whole reply; an error status becomes `.refused`.
    public func send(_ method: HTTPMethod, _ path: String, body: [UInt8]? = nil) async throws(ClientError) -> Reply {
        var collected: [UInt8] = []
        let status = try await exchange(method, path, body: body) { collected += $0 }
        let reply = Reply(status: status, body: collected)
        if status >= 400 { throw ClientError.refused(status: status, message: ControlClient.errorMessage(reply)) }
        return reply
    }

    /// Sends a request and decodes a JSON reply.
    public func send<T: Decodable>(
        _ method: HTTPMethod, _ path: String, body: (some Encodable)? = Optional<String>.none, as type: T.Type
    ) async throws(ClientError) -> T {
        let encoded = body.flatMap { try? [UInt8](JSONEncoder().encode($0)) }
        let reply = try await send(method, path, body: encoded)
        do { return try JSONDecoder().decode(T.self, from: Data(reply.body)) } catch {
            throw ClientError.unexpectedReply("\(error)")
        }
    }

    /// Streams a reply's body to `chunk` as it arrives (for `logs --follow`).
    public func stream(_ path: String, chunk: @escaping @Sendable ([UInt8]) -> Void) async throws(ClientError) {
        var errorBody: [UInt8] = []
        var failed = false
        let status = try await exchange(.GET, path, body: nil) { bytes in
            if failed { errorBody += bytes } else { chunk(bytes) }
        } onHead: { status in
            failed = status >= 400
        }
        if status >= 400 {
            throw ClientError.refused(
                status: status, message: ControlClient.errorMessage(Reply(status: status, body: errorBody)))
        }
    }

    /// Whether something accepts connections on the socket at `path`.
    public static func isListening(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8.prefix(MemoryLayout.size(ofValue: address.sun_path) - 1))
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
            }
        }
    }

    // MARK: - One HTTP exchange

    private func exchange(
        _ method: HTTPMethod, _ path: String, body: [UInt8]?, received: @escaping ([UInt8]) -> Void,
        onHead: @escaping (Int) -> Void = { _ in }
    ) async throws(ClientError) -> Int {
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(unixDomainSocketPath: socketPath) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
                            wrappingChannelSynchronously: channel)
                    }
                }
            return try await channel.executeThenClose { inbound, outbound in
                var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
                head.headers.add(name: "Host", value: "flexosd")
                head.headers.add(name: "Connection", value: "close")
                head.headers.add(name: "Content-Length", value: "\(body?.count ?? 0)")
                if body != nil { head.headers.add(name: "Content-Type", value: "application/json") }
                // The whole request in one write: flexosd answers as soon as it has the
                // head of a request without a body and then closes (Connection: close), so
                // a separate write of the end, delayed on a loaded machine, would find the
                // channel closed ("I/O on closed channel").
                var parts: [HTTPClientRequestPart] = [.head(head)]
                if let body { parts.append(.body(.byteBuffer(ByteBuffer(bytes: body)))) }
                parts.append(.end(nil))
                try await outbound.write(contentsOf: parts)
                var status = 0
                for try await part in inbound {
                    switch part {
                    case .head(let response):
                        status = Int(response.status.code)
                        onHead(status)
                    case .body(let buffer): received(Array(buffer.readableBytesView))
                    case .end: return status
                    }
                }
                return status
            }
        } catch let error as IOError {
            switch error.errnoCode {
            case ENOENT, ECONNREFUSED: throw ClientError.noDaemon(socket: socketPath)
            case EACCES, EPERM: throw ClientError.permissionDenied(socket: socketPath)
            default: throw ClientError.connection(socket: socketPath, "\(error)")
            }
        } catch {
            throw ClientError.connection(socket: socketPath, "\(error)")
        }
    }

    private static func errorMessage(_ reply: Reply) -> String {
        if let body = try? JSONDecoder().decode(ErrorBody.self, from: Data(reply.body)) { return body.error }
        let text = String(decoding: reply.body, as: UTF8.self)
        return text.isEmpty ? "flexosd answered HTTP \(reply.status)" : "flexosd answered HTTP \(reply.status): \(text)"
    }
}
