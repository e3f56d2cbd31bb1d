import Foundation
import GuestImage
import Testing

@Suite(.tags(.boot), .beyondTheUnitTier) struct SymbolizerTests {
    @Test func findsFunctionsAndOffsets() throws {
        let image = try ELFImage(path: try TestImages.build("Guest/Apps/hello").image)
        let symbolizer = Symbolizer(image: image)
        let main = try #require(symbolizer.symbol(named: "app_main"))
        #expect(main.isFunction)
        #expect(symbolizer.describe(main.address) == "app_main")
        #expect(symbolizer.describe(main.address + 3) == "app_main + 0x3")
        #expect(symbolizer.symbol(containing: main.address + 3)?.symbol == main)
    }

    @Test func demanglesSwiftNames() throws {
        let symbolizer = Symbolizer(image: try ELFImage(path: try TestImages.build("Guest/Apps/hello").image))
        let greet = try #require(symbolizer.symbols.first { $0.displayName.hasPrefix("hello.Greeter.greet()") })
        #expect(greet.name.hasPrefix("$e"))
    }

    @Test func givesFileAndLineFromDWARF() throws {
        let image = try ELFImage(path: try TestImages.build("Guest/Apps/hello").image)
        let symbolizer = Symbolizer(image: image)
        let main = try #require(symbolizer.symbols.first { $0.displayName.hasPrefix("hello.appMain()") })
        // Its instructions map to main.swift, or to the standard library code inlined into it.
        let locations = (main.address..<(main.address + main.size)).compactMap { symbolizer.sourceLocation(of: $0) }
        let own = locations.filter { $0.file.hasSuffix("Guest/Apps/hello/main.swift") }
        let lineCount = try String(contentsOfFile: repositoryRoot + "/Guest/Apps/hello/main.swift", encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false).count
        #expect(own.count > 10)
        #expect(own.allSatisfy { (1...lineCount).contains($0.line) })
    }

    @Test func knowsNothingOutsideTheImage() throws {
        let symbolizer = Symbolizer(image: try ELFImage(path: try TestImages.build("Guest/Apps/hello").image))
        #expect(symbolizer.symbol(containing: 0x10) == nil)
        #expect(symbolizer.describe(0x10) == "0x10")
        #expect(symbolizer.sourceLocation(of: 0x10) == nil)
        // A panic's code address is the guest's word: any value is named or not, never trapped on.
        for address: UInt64 in [.max, 1 << 63, 0x3F_FFFF] { #expect(symbolizer.sourceLocation(of: address) == nil) }
    }

    /// Code inlined from the standard library has line 0; the report names the source
    /// line that called it (an allocation inlined into a test guest's main).
    @Test func inlinedLibraryCodeIsNamedByItsCallSite() throws {
        let image = try TestImages.build("Tests/Guests/doublefree").image
        let symbolizer = Symbolizer(image: try ELFImage(path: image))
        let main = try #require(symbolizer.symbol(named: "app_main"))
        let lines = Set(
            (main.address..<(main.address + main.size)).compactMap { symbolizer.sourceLocation(of: $0) }.map(
                \.description))
        #expect(lines.contains("Tests/Guests/doublefree/main.swift:5"), "\(lines)")
        #expect(!lines.contains { $0.contains("<compiler-generated>") })
    }
}
