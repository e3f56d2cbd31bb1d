import ControlProtocol
import FoundationEssentials
import GuestMachine
import HTTPTypes
import Hummingbird
import Monitor
import NIOCore
import NIOPosix
import Prometheus

extension ImageSetStatus: ResponseEncodable {}
extension CompartmentSnapshot: ResponseEncodable {}
extension DaemonInfo: ResponseEncodable {}

/// The routes of the control API. Each hands the registry an action and renders what it
/// answers; nothing here touches a VM.
struct ControlRoutes: Sendable {
    let registry: ImageSetRegistry
    let metrics: DaemonMetrics
    /// Whether callers other than the daemon's own user may listen beyond the loopback or
    /// on ports below 1024 (which they could not bind themselves).
    var othersMayListenAnywhere = false

    /// Every route, for the 404/405 answers and the test that checks the OpenAPI document.
    static let routes: [(method: HTTPRequest.Method, path: String)] = [
        (.get, "/"), (.post, "/image-sets"), (.get, "/image-sets"), (.get, "/image-sets/:name"),
        (.get, "/image-sets/:name/compartments"), (.get, "/image-sets/:name/logs"),
        (.post, "/image-sets/:name/stop"), (.delete, "/image-sets/:name"), (.get, "/metrics"), (.get, "/openapi.yaml")
    ]

    func router() -> Router<ControlRequestContext> {
        let router = Router(context: ControlRequestContext.self)
        router.add(middleware: JSONErrorMiddleware(routes: ControlRoutes.routes))
        router.get("/") { _, _ in
            DaemonInfo(name: "flexosd", version: flexosVersion, imageSetsRunning: registry.runningCount)
        }
        router.post("/image-sets") { request, context in try await launch(request, context: context) }
        router.get("/image-sets") { _, _ in registry.list() }
        router.get("/image-sets/:name") { _, context in try call { try registry.status(imageSetName(context)) } }
        router.get("/image-sets/:name/compartments") { _, context in
            try call { try registry.inspect(imageSetName(context)) }
        }
        router.get("/image-sets/:name/logs") { request, context in try await logs(request, context: context) }
        router.post("/image-sets/:name/stop") { _, context in
            // Stopping waits (up to seconds) for the VMs to end: not on an event loop thread.
            let name = try imageSetName(context)
            return try await NIOThreadPool.singleton.runIfActive { [self] in
                try call { try registry.stop(name, reason: "stopped by a control API request") }
            }
        }
        router.delete("/image-sets/:name") { _, context -> HTTPResponse.Status in
            try call { try registry.remove(imageSetName(context)) }
            return .noContent
        }
        router.get("/openapi.yaml") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/yaml"],
                body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.yaml)))
        }
        router.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(string: metrics.render(registry))))
        }
        return router
    }

    private func launch(_ request: Request, context: ControlRequestContext) async throws -> EditedResponse<
        ImageSetStatus
    > {
        if let type = request.headers[.contentType], !type.lowercased().hasPrefix("application/json") {
            throw APIError(
                .unsupportedMediaType,
                "a launch request is JSON: send it with Content-Type: application/json, not \(type)")
        }
        var request = request
        let bytes: ByteBuffer
        do { bytes = try await request.collectBody(upTo: context.maxUploadSize) } catch {
            throw APIError(.contentTooLarge, "the launch request is larger than \(context.maxUploadSize) bytes")
        }
        let body: LaunchRequest
        do { body = try JSONDecoder().decode(LaunchRequest.self, from: Data(bytes.readableBytesView)) } catch {
            throw APIError(
                .badRequest,
                "malformed launch request: \(describe(error)); send JSON like {\"path\": \"/abs/path/to/image-set\", \"name\": \"optional\", \"memory\": 67108864}"
            )
        }
        guard !body.path.isEmpty else { throw APIError(.badRequest, "malformed launch request: `path` is empty") }
        var listen: [ListenAddress] = []
        for text in body.listen ?? [] {
            do { listen.append(try ListenAddress.parse(text)) } catch {
                throw APIError(.badRequest, "malformed launch request: `listen`: \(error.description)")
            }
        }
        if let idle = body.idleTimeout, idle != 0 && !CommandLineValues.isValidDuration(idle) {
            throw APIError(
                .badRequest,
                "malformed launch request: `idleTimeout` must be 0 (never) or seconds up to a year, not \(idle)")
        }
        var options = LaunchOptions(
            memory: body.memory ?? ImageSetLayout.defaultMemory,
            sharedMemory: body.sharedMemory ?? ImageSetLayout.defaultSharedMemory, timeout: body.timeout,
            listen: listen,
            clientIdleTimeout: body.idleTimeout ?? LaunchOptions.defaultClientIdleTimeout)
        options.connect = body.connect
        options.doorbells = body.doorbells ?? true
        options.sleepInKernel = body.kernelSleep ?? true
        let launchOptions = options
        guard let caller = await context.caller() else {
            throw APIError(
                .forbidden,
                "flexosd could not read the credentials of this connection (SO_PEERCRED), so it opens no file for it")
        }
        try checkListening(listen, caller: caller)
        // Opening files and creating VMs block: never on an event loop thread.
        let registry = self.registry
        let status = try await NIOThreadPool.singleton.runIfActive {
            try call {
                try registry.launch(
                    path: body.path, name: body.name, engine: body.engine, options: launchOptions, caller: caller)
            }
        }
        metrics.launched(status)
        return EditedResponse(status: .created, response: status)
    }

    /// A socket-group member may not use the root daemon to bind what it could not bind
    /// itself: only loopback addresses and ports from 1024 up, unless the daemon was started
    /// with --group-may-listen-anywhere.
    private func checkListening(_ listen: [ListenAddress], caller: FileAccessIdentity) throws {
        guard caller.uid != FileAccessIdentity.current.uid, !othersMayListenAnywhere else { return }
        for address in listen where !address.isLoopback || address.isPrivilegedPort {
            throw APIError(
                .forbidden,
                "\(address): as a member of the daemon's socket group you may listen only on loopback addresses (127.0.0.0/8, ::1) and ports from 1024 up; flexosd --group-may-listen-anywhere allows more"
            )
        }
    }

    /// The console of an image set as text; with `follow=true`, streamed until it ends.
    private func logs(_ request: Request, context: ControlRequestContext) async throws -> Response {
        let name = try imageSetName(context)
        let log = try call { try registry.log(name) }
        let machines = try call { try registry.compartmentNames(name) }
        var prefixer = LinePrefixer(enabled: machines.count > 1)
        let only = request.uri.queryParameters["compartment"].map(String.init)
        if let only, !machines.contains(only) {
            throw APIError(.notFound, "image set \(name) has no compartment \(only.debugDescription)")
        }
        let follow = request.uri.queryParameters["follow"].map { $0 == "true" || $0 == "1" } ?? false
        let json = request.uri.queryParameters["format"] == "json"
        let wanted: @Sendable (ConsoleLog.Chunk) -> Bool = {
            only == nil || $0.compartment == only || $0.compartment == "flexosd"
        }
        let contentType = json ? "application/x-ndjson" : "text/plain; charset=utf-8"
        if !follow {
            let text = log.chunks.filter(wanted).map { render($0, json: json, prefixer: &prefixer) }.joined()
            return Response(
                status: .ok, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        let initialPrefixer = prefixer
        let stream = AsyncStream<ByteBuffer> { continuation in
            let task = Task {
                var prefixer = initialPrefixer
                for await chunk in log.follow() where wanted(chunk) {
                    continuation.yield(ByteBuffer(string: render(chunk, json: json, prefixer: &prefixer)))
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
        return Response(status: .ok, headers: [.contentType: contentType], body: .init(asyncSequence: stream))
    }

    /// A chunk as text (lines prefixed with their compartment when the set has several
    /// VMs) or as one JSON line {"compartment": ..., "text": ...}.
    private func render(_ chunk: ConsoleLog.Chunk, json: Bool, prefixer: inout LinePrefixer) -> String {
        if json {
            let line = (try? JSONEncoder().encode(["compartment": chunk.compartment, "text": chunk.text])).map {
                String(decoding: $0, as: UTF8.self)
            }
            return (line ?? "{}") + "\n"
        }
        guard chunk.compartment != "flexosd" else { return chunk.text }
        return String(decoding: prefixer.prefix(Array(chunk.text.utf8), compartment: chunk.compartment), as: UTF8.self)
    }

    /// The `name` path parameter, percent-decoded.
    private func imageSetName(_ context: ControlRequestContext) throws -> String {
        let raw = try context.parameters.require("name")
        guard let name = ControlAPIPaths.unescaped(raw[...]) else {
            throw APIError(.badRequest, "the image set name in the path is not valid percent-encoding")
        }
        return name
    }

    /// What is wrong with a request body, in a sentence.
    private func describe(_ error: Error) -> String {
        switch error as? DecodingError {
        case .keyNotFound(let key, _):
            return "`\(key.stringValue)` is missing"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            let field = context.codingPath.map(\.stringValue).joined(separator: ".")
            if field.isEmpty { return "it is not valid JSON" }
            return "`\(field)` has the wrong type or value"
                + (["memory", "sharedMemory"].contains(field) ? " (a number of bytes, 0 or more)" : "")
        default:
            return "\(error)"
        }
    }

    /// Runs a registry action, turning its refusal into an API error.
    private func call<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as RegistryError { throw APIError(error) }
    }
}
