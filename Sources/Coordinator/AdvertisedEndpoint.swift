/// Endpoint rewriting for coordinators that bind a wildcard address: workers on other hosts need a name or
/// address they can reach, not `0.0.0.0`.
public enum AdvertisedEndpoint {
    /// `tcp://0.0.0.0:40123` with host `node17` → `tcp://node17:40123`. IPv6 literals are bracketed.
    /// Endpoints of other transports (ipc://, inproc://) are returned unchanged.
    public static func replacingHost(of endpoint: String, with host: String) -> String {
        guard endpoint.hasPrefix("tcp://"), let colon = endpoint.lastIndex(of: ":"),
              colon > endpoint.index(endpoint.startIndex, offsetBy: 5) else { return endpoint }
        let port = endpoint[endpoint.index(after: colon)...]
        let shown = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        return "tcp://\(shown):\(port)"
    }
}
