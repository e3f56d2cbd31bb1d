import FoundationEssentials
import HTTPTypes
import Hummingbird
import Monitor
import NIOCore
import Prometheus

extension ImageSetStatus: ResponseEncodable {}
extension CompartmentSnapshot: ResponseEncodable {}
extension DaemonInfo: ResponseEncodable {}

/// The routes of the control API. Each hands the registry an action and renders what it
/// answers; nothing here touches a VM.
struct ControlRoutes: Sendable {
    let registry: ImageSetRegistry
    let metrics: DaemonMetrics

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/") { _, _ in DaemonInfo(name: "flexosd", version: flexosVersion, imageSetsRunning: registry.runningCount) }
        router.post("/image-sets") { request, context in try await launch(request, context: context) }
        router.get("/image-sets") { _, _ in registry.list() }
        router.get("/image-sets/:name") { _, context in try call { try registry.status(context.parameters.require("name")) } }
        router.get("/image-sets/:name/compartments") { _, context in try call { try registry.inspect(context.parameters.require("name")) } }
        router.get("/image-sets/:name/logs") { request, context in try await logs(request, context: context) }
        router.post("/image-sets/:name/stop") { _, context in
            try call { try registry.stop(context.parameters.require("name"), reason: "stopped by a control API request") }
        }
        router.delete("/image-sets/:name") { _, context -> HTTPResponse.Status in
            try call { try registry.remove(context.parameters.require("name")) }
            return .noContent
        }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(string: metrics.render(registry))))
        }
        return router
    }

    private func launch(_ request: Request, context: BasicRequestContext) async throws -> EditedResponse<ImageSetStatus> {
        let body: LaunchRequest
        do { body = try await request.decode(as: LaunchRequest.self, context: context) } catch {
            throw APIError(.badRequest, "malformed launch request: send JSON like {\"path\": \"/abs/path/to/image-set\", \"name\": \"optional\"} (\(error))")
        }
        guard !body.path.isEmpty else { throw APIError(.badRequest, "malformed launch request: `path` is empty") }
        var options = LaunchOptions()
        if let memory = body.memory { options.memory = memory }
        if let shared = body.sharedMemory { options.sharedMemory = shared }
        let status = try call { try registry.launch(path: body.path, name: body.name, options: options) }
        metrics.launched()
        return EditedResponse(status: .created, response: status)
    }

    /// The console of an image set as text; with `follow=true`, streamed until it ends.
    private func logs(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let name = try context.parameters.require("name")
        let log = try call { try registry.log(name) }
        var prefixer = LinePrefixer(enabled: try call { try registry.hasSeveralMachines(name) })
        let only = request.uri.queryParameters["compartment"].map(String.init)
        let follow = request.uri.queryParameters["follow"].map { $0 == "true" || $0 == "1" } ?? false
        let json = request.uri.queryParameters["format"] == "json"
        let wanted: @Sendable (ConsoleLog.Chunk) -> Bool = { only == nil || $0.compartment == only || $0.compartment == "flexosd" }
        let contentType = json ? "application/x-ndjson" : "text/plain; charset=utf-8"
        if !follow {
            let text = log.chunks.filter(wanted).map { render($0, json: json, prefixer: &prefixer) }.joined()
            return Response(status: .ok, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        let stream = AsyncStream<ByteBuffer> { continuation in
            let task = Task {
                var prefixer = prefixer
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
            let line = (try? JSONEncoder().encode(["compartment": chunk.compartment, "text": chunk.text])).map { String(decoding: $0, as: UTF8.self) }
            return (line ?? "{}") + "\n"
        }
        guard chunk.compartment != "flexosd" else { return chunk.text }
        return String(decoding: prefixer.prefix(Array(chunk.text.utf8), compartment: chunk.compartment), as: UTF8.self)
    }

    /// Runs a registry action, turning its refusal into an API error.
    private func call<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as RegistryError { throw APIError(error) }
    }
}
