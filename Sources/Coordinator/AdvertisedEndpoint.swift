import Foundation

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

    /// The URL of a metrics listener bound at `address` (`HOST:PORT`): a wildcard host (0.0.0.0, ::) is replaced by
    /// `advertiseHost` when one is given. `0.0.0.0:9100` with `node17` → `http://node17:9100/metrics`.
    public static func metricsURL(bound address: String, advertiseHost: String?) -> String {
        guard let colon = address.lastIndex(of: ":") else { return "http://\(address)/metrics" }
        let host = address[..<colon].trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        let port = address[address.index(after: colon)...]
        guard let advertiseHost, ["0.0.0.0", "::", "*", ""].contains(host) else { return "http://\(address)/metrics" }
        let shown = advertiseHost.contains(":") && !advertiseHost.hasPrefix("[") ? "[\(advertiseHost)]" : advertiseHost
        return "http://\(shown):\(port)/metrics"
    }
}
