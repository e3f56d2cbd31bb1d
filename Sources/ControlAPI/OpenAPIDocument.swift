import ControlProtocol

/// The control API described in OpenAPI 3.0 (as Firecracker publishes its own), served
/// at `GET /openapi.yaml`. A test checks that its paths and methods are exactly the
/// routes `ControlRoutes` serves; the soak script attacks the live daemon with
/// schemathesis from it.
public enum OpenAPIDocument {
    /// Every route the daemon serves, as "GET /image-sets/{name}" (OpenAPI's spelling).
    public static var routes: [String] {
        ControlRoutes.routes.map { route in
            let path = route.path.split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }
            return "\(route.method.rawValue) /" + path.joined(separator: "/")
        }
    }

    public static let yaml = #"""
        openapi: 3.0.3
        info:
          title: flexosd control API
          version: 0.1.0
          description: |
            flexosd launches FlexOS image sets on KVM and reports on them. HTTP/1.1 with JSON bodies on a
            Unix socket (/run/flexosd.sock for root). Every error is {"error": "..."} with a 4xx or 5xx status.
        paths:
          /:
            get:
              operationId: describeDaemon
              summary: The daemon's name, version and how many image sets run.
              responses:
                "200": {description: The daemon., content: {application/json: {schema: {$ref: "#/components/schemas/DaemonInfo"}}}}
          /image-sets:
            get:
              operationId: listImageSets
              summary: Every image set, running or ended, in launch order.
              responses:
                "200": {description: The image sets., content: {application/json: {schema: {type: array, items: {$ref: "#/components/schemas/ImageSetStatus"}}}}}
            post:
              operationId: launchImageSet
              summary: Launch an image set; answers at once with its status.
              requestBody:
                required: true
                content: {application/json: {schema: {$ref: "#/components/schemas/LaunchRequest"}}}
              responses:
                "201": {description: Launched., content: {application/json: {schema: {$ref: "#/components/schemas/ImageSetStatus"}}}}
                "400": {$ref: "#/components/responses/Error"}
                "403": {$ref: "#/components/responses/Error"}
                "409": {$ref: "#/components/responses/Error"}
                "413": {$ref: "#/components/responses/Error"}
                "415": {$ref: "#/components/responses/Error"}
                "422": {$ref: "#/components/responses/Error"}
                "500": {$ref: "#/components/responses/Error"}
                "503": {$ref: "#/components/responses/Error"}
          /image-sets/{name}:
            parameters: [{$ref: "#/components/parameters/Name"}]
            get:
              operationId: describeImageSet
              summary: One image set's status.
              responses:
                "200": {description: Its status., content: {application/json: {schema: {$ref: "#/components/schemas/ImageSetStatus"}}}}
                "400": {$ref: "#/components/responses/Error"}
                "404": {$ref: "#/components/responses/Error"}
            delete:
              operationId: removeImageSet
              summary: Forget an image set that has ended.
              responses:
                "204": {description: Removed.}
                "400": {$ref: "#/components/responses/Error"}
                "404": {$ref: "#/components/responses/Error"}
                "409": {$ref: "#/components/responses/Error"}
          /image-sets/{name}/compartments:
            parameters: [{$ref: "#/components/parameters/Name"}]
            get:
              operationId: inspectCompartments
              summary: Per VM, live while it runs, as it ended afterwards.
              responses:
                "200": {description: One entry per VM., content: {application/json: {schema: {type: array, items: {$ref: "#/components/schemas/CompartmentSnapshot"}}}}}
                "400": {$ref: "#/components/responses/Error"}
                "404": {$ref: "#/components/responses/Error"}
          /image-sets/{name}/logs:
            parameters:
              - {$ref: "#/components/parameters/Name"}
              - {name: follow, in: query, required: false, schema: {type: string, enum: ["true", "false", "1", "0"]}, description: "Stream until the image set ends."}
              - {name: compartment, in: query, required: false, schema: {type: string}, description: "Only this compartment's output."}
              - {name: format, in: query, required: false, schema: {type: string, enum: [text, json]}, description: "json gives one object with compartment and text a line."}
            get:
              operationId: readLogs
              summary: The console output of an image set.
              responses:
                "200":
                  description: The console, as text or as JSON lines.
                  content:
                    text/plain: {schema: {type: string}}
                    application/x-ndjson: {schema: {type: string}}
                "400": {$ref: "#/components/responses/Error"}
                "404": {$ref: "#/components/responses/Error"}
          /image-sets/{name}/stop:
            parameters: [{$ref: "#/components/parameters/Name"}]
            post:
              operationId: stopImageSet
              summary: Stop a running image set and wait (up to 5 s) for its VMs to end.
              responses:
                "200": {description: Its status afterwards., content: {application/json: {schema: {$ref: "#/components/schemas/ImageSetStatus"}}}}
                "400": {$ref: "#/components/responses/Error"}
                "404": {$ref: "#/components/responses/Error"}
          /metrics:
            get:
              operationId: metrics
              summary: Prometheus text format.
              responses:
                "200": {description: The metrics., content: {text/plain: {schema: {type: string}}}}
          /openapi.yaml:
            get:
              operationId: openAPIDocument
              summary: This document.
              responses:
                "200": {description: The document., content: {application/yaml: {schema: {type: string}}}}
        components:
          parameters:
            Name:
              name: name
              in: path
              required: true
              description: An image set's name (letters, digits, '-', '_', '.'; at most 64).
              schema: {type: string, pattern: "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$"}
          responses:
            Error:
              description: Refused; the message says why and what to do.
              content: {application/json: {schema: {$ref: "#/components/schemas/ErrorBody"}}}
          schemas:
            ErrorBody:
              type: object
              required: [error]
              properties: {error: {type: string}}
            DaemonInfo:
              type: object
              required: [name, version, imageSetsRunning]
              properties:
                name: {type: string}
                version: {type: string}
                imageSetsRunning: {type: integer, minimum: 0}
            LaunchRequest:
              type: object
              required: [path]
              properties:
                path: {type: string, minLength: 1, description: "An image set folder, its manifest.json or a guest ELF, as the daemon sees the file system."}
                name: {type: string, pattern: "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$"}
                memory: {type: integer, minimum: 1048576, maximum: 1073741824, multipleOf: 4096, description: "Private memory per compartment in bytes."}
                sharedMemory: {type: integer, minimum: 4096, maximum: 1073741824, multipleOf: 4096, description: "Shared memory of the set in bytes (the set's shared data, gate block and shared stacks must fit)."}
                timeout: {type: number, exclusiveMinimum: true, minimum: 0, maximum: 31536000, description: "Seconds after which the daemon stops it."}
                listen: {type: array, items: {type: string, description: "HOST:PORT, e.g. 127.0.0.1:6379 or [::1]:0"}, description: "Addresses the image set's network device listens on (only for image sets that have one)."}
                idleTimeout: {type: number, minimum: 0, maximum: 31536000, description: "Seconds after which the network device closes a client connection that sends and receives nothing; 0: never; 300 by default."}
                doorbells: {type: boolean, description: "false: its compartments wake each other and the network device with hypercalls instead of doorbells (to compare); true by default."}
                kernelSleep: {type: boolean, description: "false: an idle compartment waits in flexosd (the wait hypercall) instead of halting its vCPU in the kernel (to compare); true by default."}
                engine: {type: string, enum: [kvm, qemu], description: "What runs it: kvm (flexosd's own VMM) or qemu (emulated, with protection keys; single-VM image sets without a network device). By default the first that can run it here."}
            ImageSetStatus:
              type: object
              required: [name, path, mechanism, compartments, state, launchedAt, seconds]
              properties:
                name: {type: string}
                path: {type: string}
                mechanism: {type: string, enum: [fcalls, vmept, intel-mpk]}
                engine: {type: string, enum: [kvm, qemu]}
                engineReason: {type: string, description: "Why this engine, when the launch named none."}
                compartments: {type: array, items: {type: string}}
                state: {type: string, description: "running, or how it ended: exited, panicked, faulted, timed out, stopped, failed"}
                exitStatus: {type: integer}
                message: {type: string}
                launchedAt: {type: number}
                seconds: {type: number}
                launchStartedAt: {type: integer}
                firstOutputAt: {type: integer}
                listening: {type: array, items: {type: string}, description: "Where its network device listens, while it runs."}
            CompartmentSnapshot:
              type: object
              required: [name, compartments, mechanism, libraries, hardening, vcpu, regions, privateBytes, sharedBytes, gates, exits, hypercalls, kvmStatistics, consoleBytes]
              properties:
                name: {type: string}
                compartments: {type: array, items: {type: string}}
                mechanism: {type: string}
                libraries: {type: array, items: {type: string}}
                hardening:
                  description: Each compartment's hardening (stack-protector, bounds-checks, exclusivity-checks, guard-pages, heap-checks).
                  type: object
                  additionalProperties: {type: array, items: {type: string}}
                vcpu: {type: string, enum: [running, sleeping, stopped]}
                regions:
                  type: array
                  items:
                    type: object
                    required: [kind, start, size, permissions, shared]
                    properties:
                      kind: {type: string}
                      section: {type: string}
                      library: {type: string}
                      start: {type: integer}
                      size: {type: integer}
                      permissions: {type: string}
                      shared: {type: boolean}
                privateBytes: {type: integer}
                sharedBytes: {type: integer}
                gates:
                  type: object
                  required: [callsOut, callsIn, sampledCalls]
                  properties:
                    callsOut: {type: integer}
                    callsIn: {type: integer}
                    sampledCalls: {type: integer}
                    meanNanoseconds: {type: number}
                    maxNanoseconds: {type: number}
                    sleeps: {type: integer, description: "Times it slept, counted by the guest in its gate-block state."}
                    doorbellsRung: {type: integer, description: "Doorbells it rang (wakes and device kicks), counted by the guest."}
                exits: {type: object, additionalProperties: {type: integer}}
                hypercalls: {type: object, additionalProperties: {type: integer}}
                kvmStatistics: {type: object, additionalProperties: {type: integer}}
                consoleBytes: {type: integer}
                devices:
                  type: array
                  description: "The devices of the VM that holds them (the network device); absent for other VMs."
                  items:
                    type: object
                    required: [kind, description, listening, summary, counters]
                    properties:
                      kind: {type: string, description: "Its name in library.yaml, e.g. net."}
                      description: {type: string, description: "What people call it, e.g. network device."}
                      listening: {type: array, items: {type: string}}
                      summary: {type: string, description: "What it does and did, as a person reads it."}
                      counters: {type: object, additionalProperties: {type: integer}, description: "The network device: accepted, refused, closed, timedOut, bytesReceived, bytesSent, kicks, wakes, sleeps."}
                notification: {type: string, description: "How the VM is woken: doorbells or wake hypercalls, then ', sleeping in the kernel' where its vCPU halts in KVM rather than waits in flexosd; absent where nothing wakes a VM (QEMU)."}
                woken: {type: integer, description: "How often a wait of the VM ended woken."}
                protectionKeys:
                  type: array
                  description: "Under intel-mpk: each compartment's protection key and the PKRU its code runs with."
                  items:
                    type: object
                    required: [compartment, key, pkru]
                    properties:
                      compartment: {type: string}
                      key: {type: integer}
                      pkru: {type: string, description: "e.g. 0xfffffff0: every key but 0 and its own closed."}
                rightsAtLastHypercall:
                  type: object
                  description: "Under intel-mpk on the QEMU engine: the PKRU ring 3 held at its last hypercall, and the compartment whose rights those are (absent: none's)."
                  required: [pkru]
                  properties:
                    pkru: {type: string}
                    compartment: {type: string}
        """#
}
