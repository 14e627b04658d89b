import Logging

/// swift-log's backend for every command: plain lines on stderr, one level for the process.
enum StderrLogging {
    /// Bootstraps the logging system (once per process: swift-log allows no second call) and returns a logger
    /// labelled `label` at `level`.
    static func bootstrap(label: String, level: Logger.Level) -> Logger {
        LoggingSystem.bootstrap { name in
            var handler = StreamLogHandler.standardError(label: name)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: label)
        logger.logLevel = level
        return logger
    }
}
