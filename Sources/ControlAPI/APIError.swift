import ControlProtocol
import FoundationEssentials
import GuestMachine
import HTTPTypes
import Hummingbird
import Monitor
import NIOCore

/// An error response: a status and a JSON body `{"error": "..."}` a person can act on.
struct APIError: HTTPResponseError {
    let status: HTTPResponse.Status
    let message: String
    var headers: HTTPFields = [:]

    init(_ status: HTTPResponse.Status, _ message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.message = message
        self.headers = headers
    }

    /// The status a registry refusal maps to.
    init(_ error: RegistryError) {
        switch error {
        case .unknownImageSet: self.init(.notFound, error.description)
        case .nameTaken, .stillRunning: self.init(.conflict, error.description)
        case .noEngine(.noneCanRun): self.init(.serviceUnavailable, error.description)
        case .invalidName, .invalidTimeout, .noEngine, .connectNeedsLibvirt:
            self.init(.badRequest, error.description)
        case .notEnoughMemory: self.init(.serviceUnavailable, error.description)
        case .launch(let launch):
            switch launch {
            case .kvm(.cannotOpenDevice), .kvm(.notKVMDevice), .kvm(.unsupportedAPIVersion), .kvm(.missingCapability):
                self.init(.serviceUnavailable, "cannot launch: \(launch)")
            case .kvm, .threadFailed: self.init(.internalServerError, "cannot launch: \(launch)")
            case .hostFailed: self.init(.badGateway, "cannot launch: \(launch)")
            case .cannotActAs: self.init(.forbidden, launch.description)
            case .image: self.init(.unprocessableContent, launch.description)
            default: self.init(.badRequest, launch.description)
            }
        }
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        let body = try encoder.encode(ErrorBody(error: message))
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}
