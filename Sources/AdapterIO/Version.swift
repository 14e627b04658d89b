/// The tool version, reported by `brickyard --version`, in worker hellos and in checkpoint manifests.
public enum BrickyardVersion {
    public static let string = "0.1.0"
}
