import GuestMachine
import NetworkDevice

/// The devices flexosd's KVM engine offers image sets: one provider per kind. A new device
/// is registered here and nowhere else (its ABI is in flexos_abi.h and `DeviceKind.all`).
let deviceProviders: [any DeviceProvider] = [NetworkDeviceProvider()]
