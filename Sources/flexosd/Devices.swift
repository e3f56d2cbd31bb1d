import GuestMachine
import NetworkDevice

/// The devices flexosd's KVM engine offers image sets: one provider per kind. A new device
/// is registered here and nowhere else (its ABI, with its line of FLEXOS_DEVICE_KINDS, is in flexos_abi.h).
let deviceProviders: [any DeviceProvider] = [NetworkDeviceProvider()]
