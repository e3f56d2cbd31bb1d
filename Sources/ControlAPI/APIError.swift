import FoundationEssentials
import HTTPTypes
import Hummingbird
import Monitor
import NIOCore

/// An error response: a status and a JSON body `{"error": "..."}` a person can act on.
struct APIError: HTTPResponseError {
    let status: HTTPResponse.Status
    let message: String

    init(_ status: HTTPResponse.Status, _ message: String) {
        self.status = status
        self.message = message
    }

    /// The status a registry refusal maps to.
    init(_ error: RegistryError) {
        switch error {
        case .unknownImageSet: self.init(.notFound, error.description)
        case .nameTaken, .stillRunning: self.init(.conflict, error.description)
        case .invalidName: self.init(.badRequest, error.description)
        case .launch(let launch):
            switch launch {
            case .kvm: self.init(.serviceUnavailable, "cannot launch: \(launch)")
            case .image: self.init(.unprocessableContent, launch.description)
            default: self.init(.badRequest, launch.description)
            }
        }
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        let body = try JSONEncoder().encode(ErrorBody(error: message))
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}
