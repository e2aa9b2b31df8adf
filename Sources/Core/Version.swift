public enum NTKScapeVersion { public static let string = "0.1.0" }
