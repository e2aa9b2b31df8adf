import ArgumentParser
import Core

/// `ntkscape models`: the architectures with their sizes for a given input.
struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the models with parameter counts and FLOPs.")

    @Option(help: "Input shape CxHxW.") var input: Shape = Shape(3, 32, 32)
    @Option(help: "Number of classes.") var classes: Int = 10

    func run() throws {
        print("model          parameters   fwd MFLOP/img  description")
        for kind in ModelKind.allCases {
            let net = kind.build(input: input, classes: classes, as: Float.self)
            print(kind.rawValue.padding(toLength: 14, withPad: " ", startingAt: 0)
                  + String(net.parameterCount).leftPadded(11)
                  + String(format: "%15.1f", Double(net.forwardFlops) / 1e6) + "  " + kind.summary)
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
