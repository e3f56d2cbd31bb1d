/// The control API's wire format (JSON bodies), shared by flexosd and flexosctl.
///
///     GET    /                                  -> DaemonInfo
///     POST   /image-sets                        LaunchRequest -> 201 ImageSetStatus
///     GET    /image-sets                        -> [ImageSetStatus]
///     GET    /image-sets/{name}                 -> ImageSetStatus
///     GET    /image-sets/{name}/compartments    -> [CompartmentSnapshot]
///     GET    /image-sets/{name}/logs[?follow=true&compartment=C]  -> text, streamed
///     POST   /image-sets/{name}/stop            -> ImageSetStatus
///     DELETE /image-sets/{name}                 -> 204 (an ended image set)
///     GET    /metrics                           -> Prometheus text format
///
/// Errors come back with a 4xx/5xx status and an `ErrorBody`.
public enum ControlAPIPaths {
    public static let imageSets = "/image-sets"
    public static let metrics = "/metrics"

    /// The path of the image set `name`.
    public static func imageSet(_ name: String) -> String { imageSets + "/" + escaped(name) }

    /// `text` as one path segment or query value: every byte but RFC 3986's unreserved
    /// characters percent-encoded.
    public static func escaped(_ text: String) -> String {
        let unreserved = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~".utf8)
        let digits = Array("0123456789ABCDEF")
        return String(
            text.utf8.flatMap { byte -> [Character] in
                unreserved.contains(byte)
                    ? [Character(UnicodeScalar(byte))] : ["%", digits[Int(byte >> 4)], digits[Int(byte & 15)]]
            })
    }
}

extension ControlAPIPaths {
    /// `text` with its percent-escapes decoded; nil when an escape is malformed or the
    /// bytes are not UTF-8.
    public static func unescaped(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                return nil
            }
            bytes.append(high << 4 | low)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return digit - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

/// POST /image-sets
public struct LaunchRequest: Codable, Sendable {
    /// An image set folder, its manifest.json or a guest ELF, as the daemon sees the file system.
    public var path: String
    public var name: String?
    /// Private memory per compartment, in bytes.
    public var memory: UInt64?
    /// Shared memory of the set, in bytes.
    public var sharedMemory: UInt64?
    /// Seconds after which the daemon stops it; none by default.
    public var timeout: Double?
    /// Addresses its network device listens on, e.g. ["127.0.0.1:6379"].
    public var listen: [String]?
    /// Seconds after which its network device closes an idle client connection; 0: never.
    public var idleTimeout: Double?
    /// What runs it: kvm or qemu; by default the first that can run it here.
    public var engine: EngineKind?
    /// The libvirt host to run it on, e.g. qemu:///system (the libvirt engine).
    public var connect: String?
    /// false: its compartments wake each other with hypercalls instead of doorbells (to
    /// compare); doorbells wherever KVM offers them by default.
    public var doorbells: Bool?
    /// false: an idle compartment waits in flexosd (the wait hypercall) instead of halting
    /// in the kernel (to compare); in the kernel wherever KVM offers it by default.
    public var kernelSleep: Bool?

    public init(
        path: String, name: String? = nil, memory: UInt64? = nil, sharedMemory: UInt64? = nil, timeout: Double? = nil,
        listen: [String]? = nil,
        idleTimeout: Double? = nil, engine: EngineKind? = nil,
        connect: String? = nil, doorbells: Bool? = nil, kernelSleep: Bool? = nil
    ) {
        self.connect = connect
        self.doorbells = doorbells
        self.kernelSleep = kernelSleep
        self.idleTimeout = idleTimeout
        self.engine = engine
        self.path = path
        self.name = name
        self.memory = memory
        self.sharedMemory = sharedMemory
        self.timeout = timeout
        self.listen = listen
    }

    private enum CodingKeys: String, CodingKey {
        case path, name, memory, sharedMemory, timeout, listen, idleTimeout, engine, connect, doorbells, kernelSleep
    }

    /// Decodes a request, saying which size is wrong when one is negative (the decoder's
    /// own error for a negative UInt64 names no field).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func size(_ key: CodingKeys) throws -> UInt64? {
            if let value = try? container.decodeIfPresent(UInt64.self, forKey: key) { return value }
            guard container.contains(key), (try? container.decodeNil(forKey: key)) != true else { return nil }
            throw DecodingError.dataCorruptedError(
                forKey: key, in: container,
                debugDescription: "\(key.stringValue) must be a whole number of bytes, 0 or more")
        }
        path = try container.decode(String.self, forKey: .path)
        name = try container.decodeIfPresent(String.self, forKey: .name)
        memory = try size(.memory)
        sharedMemory = try size(.sharedMemory)
        timeout = try container.decodeIfPresent(Double.self, forKey: .timeout)
        listen = try container.decodeIfPresent([String].self, forKey: .listen)
        idleTimeout = try container.decodeIfPresent(Double.self, forKey: .idleTimeout)
        engine = try container.decodeIfPresent(EngineKind.self, forKey: .engine)
        connect = try container.decodeIfPresent(String.self, forKey: .connect)
        doorbells = try container.decodeIfPresent(Bool.self, forKey: .doorbells)
        kernelSleep = try container.decodeIfPresent(Bool.self, forKey: .kernelSleep)
    }
}

/// GET /
public struct DaemonInfo: Codable, Sendable {
    public var name: String
    public var version: String
    public var imageSetsRunning: Int

    public init(name: String, version: String, imageSetsRunning: Int) {
        self.name = name
        self.version = version
        self.imageSetsRunning = imageSetsRunning
    }
}

/// The body of every error response.
public struct ErrorBody: Codable, Sendable {
    public var error: String

    public init(error: String) { self.error = error }
}

public let flexosVersion = "0.1.0"
