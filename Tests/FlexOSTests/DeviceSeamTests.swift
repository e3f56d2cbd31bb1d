import CFlexOSABI
import ControlAPI
import ControlProtocol
import GuestImage
import GuestMachine
import KVM
import Monitor
import NetworkDevice
import Testing

/// The device seam: the KVM engine reaches the network device only through `Device` and
/// `DeviceProvider`, with the real device behind them (its memory and io_uring, no listener).
@Suite(.tags(.unit)) struct DeviceSeamTests {
    static let withDevice = manifest(devices: [.init(kind: "net", library: "net")])
    static let withoutDevice = manifest(devices: nil)

    static func manifest(devices: [ImageManifest.Device]?) -> ImageManifest {
        ImageManifest(
            name: "set", image: "set.elf", mechanism: .vmept, application: "app",
            compartments: [
                .init(name: "comp1", libraries: ["app"], hardening: []),
                .init(name: "comp2", libraries: ["net"], hardening: [])
            ],
            libraries: [
                .init(name: "app", compartment: "comp1", regions: []),
                .init(name: "net", compartment: "comp2", regions: [])
            ],
            runtime: [], shared: [], exports: [], devices: devices)
    }

    func makeDevice(idleTimeout: Double = 0) throws -> any Device {
        try NetworkDeviceProvider().makeDevice(
            for: DeviceSeamTests.withDevice, options: LaunchOptions(clientIdleTimeout: idleTimeout))
    }

    func handler(devices: [any Device]) throws -> HypercallHandler {
        let memory = try GuestMemory(name: "flexos-test-device-seam", size: 1 << 20)
        let range: Range<UInt64> = 0x10_0000..<0x20_0000
        let space = GuestAddressSpace(
            slots: [.init(range: range, memory: memory, offset: 0)],
            mapped: [GuestRegion(kind: .heap, range: range, permissions: .readWrite)])
        return HypercallHandler(
            space: space, console: ConsoleRing(host: memory.base, bytes: 4096), compartmentCount: 2, devices: devices
        ) { _ in }
    }

    @Test func aDevicesHypercallReachesItOnlyFromTheVMThatHoldsIt() throws {
        let device = try makeDevice()
        let kick = UInt64(FLEXOS_HYPERCALL_NET_KICK.rawValue)
        #expect(Hypercall(number: kick) == nil, "net_kick is the device's, not one every VM may make")

        let holder = try handler(devices: [device])
        let owner = try #require(holder.device(owning: kick))
        #expect(owner.name == "net_kick" && owner.device === device)
        #expect(holder.handle(kick, of: owner.device, argument: 0) == .resume)

        #expect(try handler(devices: []).device(owning: kick) == nil)
        #expect(holder.device(owning: 99) == nil)
    }

    @Test func theDeviceTellsTheGuestsWhereItIsAndItsSettingsThroughTheBootInfo() throws {
        let device = try makeDevice(idleTimeout: 300)
        var holder = flexos_boot_info()
        device.describe(in: &holder, for: DeviceMachine(holdsDevice: true, doorbells: true))
        #expect(holder.net_device == DeviceKind.network.window.lowerBound)
        #expect(holder.net_doorbell == FLEXOS_NET_DOORBELL && device.doorbell?.address == FLEXOS_NET_DOORBELL)
        #expect(holder.client_idle_timeout == 300)
        // Every compartment may answer CONFIG GET timeout; only the holder finds the device.
        var other = flexos_boot_info()
        device.describe(in: &other, for: DeviceMachine(holdsDevice: false, doorbells: true))
        #expect(other.net_device == 0 && other.net_doorbell == 0 && other.client_idle_timeout == 300)
        // Without doorbells the holder kicks with the hypercall.
        var fallback = flexos_boot_info()
        device.describe(in: &fallback, for: DeviceMachine(holdsDevice: true, doorbells: false))
        #expect(fallback.net_doorbell == 0)
    }

    @Test func theReportSaysWhatTheDeviceDidInWordsAndCounters() throws {
        let report = try makeDevice().report()
        #expect(report.kind == "net" && report.description == "network device" && report.listening.isEmpty)
        #expect(report.summary.hasPrefix("listening on nothing; 0 connections (0 open, 0 refused, 0 timed out)"))
        #expect(Set(report.counters.keys).isSuperset(of: ["accepted", "refused", "closed", "bytesSent", "wakes"]))
    }

    @Test func listeningWithoutTheDeviceIsRefusedByItsProvider() throws {
        var options = LaunchOptions()
        options.listen = [try ListenAddress.parse("127.0.0.1:0")]
        #expect(throws: LaunchError.self) {
            try NetworkDeviceProvider().check(options, imageSet: DeviceSeamTests.withoutDevice)
        }
        try NetworkDeviceProvider().check(options, imageSet: DeviceSeamTests.withDevice)
        try NetworkDeviceProvider().check(LaunchOptions(), imageSet: DeviceSeamTests.withoutDevice)
    }

    @Test func aDeviceIsCountedInTheMemoryALaunchPromises() {
        let options = LaunchOptions(memory: 1 << 20, sharedMemory: 1 << 20)
        let without = MemoryAdmission.promised(by: DeviceSeamTests.withoutDevice, options: options)
        let with = MemoryAdmission.promised(by: DeviceSeamTests.withDevice, options: options)
        #expect(with - without == DeviceKind.network.bytes)
        let hostile = LaunchOptions(memory: 1 << 20, sharedMemory: .max - (1 << 20))
        #expect(MemoryAdmission.promised(by: DeviceSeamTests.withDevice, options: hostile) == .max)
    }

    @Test func manifestsNameOnlyDevicesTheABIDefines() throws {
        #expect(DeviceKind.named("net") == .network)
        #expect(DeviceKind.named("disk") == nil)
        #expect(DeviceSeamTests.withDevice.library(holding: .network)?.name == "net")
        #expect(DeviceSeamTests.withoutDevice.deviceKinds.isEmpty)
    }
}
