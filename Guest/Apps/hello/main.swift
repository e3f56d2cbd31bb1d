import FlexOS

/// The hello appliance: classes, arrays, dictionaries and strings on the guest heap.
final class Greeter {
    let name: String
    private(set) var greetings = 0

    init(name: String) { self.name = name }

    func greet() -> String {
        greetings += 1
        return "Hello from FlexOS, \(name)!"
    }
}

@_cdecl("app_main")
public func appMain() -> Int32 {
    let greeter = Greeter(name: "Embedded Swift in ring 3")
    print(greeter.greet())

    let squares = (1...10).map { $0 * $0 }
    var wordCounts: [String: Int] = [:]
    for word in "the quick brown fox jumps over the lazy dog and the cat".split(separator: " ") {
        wordCounts[String(word), default: 0] += 1
    }
    let listed = squares.map { String($0) }.joined(separator: " ")
    print("squares \(listed) add up to \(squares.reduce(0, +)); 'the' appears \(wordCounts["the"] ?? 0) times in \(wordCounts.count) distinct words")
    return 0
}
