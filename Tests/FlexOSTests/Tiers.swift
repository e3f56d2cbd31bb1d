import Foundation
import Testing

/// The tiers of the tests (`scripts/test --unit` runs the first alone, in seconds).
extension Tag {
    /// Needs no /dev/kvm, no guest build and no other program.
    @Tag static var unit: Self
    /// Boots guests on /dev/kvm (and builds them).
    @Tag static var boot: Self
    /// Starts flexosd and drives it with flexosctl.
    @Tag static var daemon: Self
    /// Runs guests under QEMU: TCG, or the nested KVM with protection keys.
    @Tag static var qemu: Self
    /// Drives the appliances with Redis's own clients, or compares them with redis-server.
    @Tag static var redis: Self
}

/// Whether `scripts/test --unit` asked for the unit tier alone.
let onlyTheUnitTier = ProcessInfo.processInfo.environment["FLEXOS_TEST_TIER"] == "unit"

extension Trait where Self == ConditionTrait {
    /// Leaves a suite or test out of `scripts/test --unit`; every other run runs it.
    static var beyondTheUnitTier: Self {
        .disabled(if: onlyTheUnitTier, "scripts/test --unit runs the unit tier alone")
    }
}

/// A test of the unit tier that builds a guest or opens /dev/kvm fails with this: it
/// belongs to another tier.
func refuseInTheUnitTier(_ what: String) throws {
    if onlyTheUnitTier { throw TestFailure("a unit-tier test may not \(what): tag it .boot (and .beyondTheUnitTier)") }
}
