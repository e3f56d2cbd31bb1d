import GuestImage
import Testing

/// What each mechanism supplies, as one value: the layout, the engines and `flexosctl hosts`
/// ask these instead of comparing names.
@Suite(.tags(.unit)) struct MechanismTests {
    @Test func eachMechanismHasItsOwnValue() {
        #expect(Mechanism.allCases.allSatisfy { $0.isolation.mechanism == $0 })
    }

    @Test func compartmentsMapToVMsAsTheMechanismSays() {
        let vmept = Mechanism.vmept.isolation.machines(of: ["comp1", "comp2"])
        #expect(vmept.map(\.name) == ["comp1", "comp2"] && vmept.map(\.members) == [["comp1"], ["comp2"]])
        for mechanism in [Mechanism.fcalls, .intelMPK] {
            let one = mechanism.isolation.machines(of: ["comp1", "comp2"])
            #expect(one.map(\.name) == ["comp1+comp2"] && one.map(\.members) == [["comp1", "comp2"]])
            #expect(mechanism.isolation.machine(ofCompartment: 1) == 0)
        }
        #expect(Mechanism.vmept.isolation.machine(ofCompartment: 1) == 1)
    }

    @Test func onlyProtectionKeysKeyCompartmentsAndNeedPKU() {
        let keyed = Mechanism.allCases.filter { $0.isolation.keysCompartments }
        #expect(keyed == [.intelMPK])
        #expect(Mechanism.allCases.filter { $0.isolation.needsProtectionKeys } == [.intelMPK])
        #expect(Mechanism.intelMPK.isolation.compartmentLimit?.count == 15)
        #expect(Mechanism.vmept.isolation.compartmentLimit == nil)
    }
}
