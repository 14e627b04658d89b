extension Duration {
    /// Whole milliseconds (rounded down), as ZeroMQ options and the wire protocol want them.
    var wholeMilliseconds: Int {
        Int(components.seconds) * 1000 + Int(components.attoseconds / 1_000_000_000_000_000)
    }
}
