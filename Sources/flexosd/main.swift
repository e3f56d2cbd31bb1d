import Glibc
import KVM
import Monitor

struct Terminal: ConsoleSink {
    func write(_ bytes: [UInt8], compartment: String, index: Int) {
        bytes.withUnsafeBytes { _ = Glibc.write(1, $0.baseAddress, $0.count) }
    }
}
do {
    let hv = try Hypervisor()
    let set = try ImageSet.open(CommandLine.arguments[1])
    let run = try ImageSetRun(set, options: LaunchOptions(), hypervisor: hv, console: Terminal())
    let report = run.wait(timeout: 5)
    print(report)
} catch {
    print("error: \(error)")
}
