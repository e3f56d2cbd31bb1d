import HTTPTypes
import Hummingbird

/// Gives every error the API's shape, `{"error": "..."}`: Hummingbird's own answers for
/// an unknown route, a wrong method or an oversized body come back as JSON too, and a
/// known path asked with the wrong method is a 405 that lists the methods it takes.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let routes: [(method: HTTPRequest.Method, path: String)]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as HTTPError {
            if error.status == .notFound {
                let allowed = allowedMethods(request.uri.path)
                if !allowed.isEmpty && !allowed.contains(request.method) {
                    let names = allowed.map(\.rawValue).joined(separator: ", ")
                    throw APIError(
                        .methodNotAllowed, "\(request.uri.path) takes \(names), not \(request.method.rawValue)",
                        headers: [.allow: names])
                }
                if allowed.isEmpty {
                    throw APIError(.notFound, "there is no endpoint \(request.method.rawValue) \(request.uri.path)")
                }
            }
            throw APIError(error.status, error.body ?? error.status.reasonPhrase)
        }
    }

    /// The methods the routes offer for `path`.
    private func allowedMethods(_ path: String) -> [HTTPRequest.Method] {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        return routes.filter { route in
            let pattern = route.path.split(separator: "/", omittingEmptySubsequences: true)
            return pattern.count == segments.count
                && zip(pattern, segments).allSatisfy { $0.hasPrefix(":") || $0 == $1 }
        }.map(\.method)
    }
}
