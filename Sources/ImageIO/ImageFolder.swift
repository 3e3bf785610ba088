import Foundation

/// A folder of JPEG/PNG files, recursive. In the ImageFolder layout (`root/class_name/**/*.png`, no image directly
/// in `root`) the sorted class names give the labels, as torchvision's `ImageFolder` does; otherwise (a flat or
/// nested folder with images in `root`) there are no labels.
///
/// Scanning lists candidates by name (`.jpg`, `.jpeg`, `.png`, any case); `load` decodes them. Everything else, and
/// every file that fails to decode or exceeds the limits, is skipped with one line through `log`: never a crash.
/// Hidden entries (a leading `.`, as a spool writer's temporary file) are ignored without a log line; symlinked
/// directories are not followed (no loops). Order is deterministic: by label, then by relative path (code points).
public struct ImageFolder: Sendable {
    public enum Layout: Sendable, Equatable {
        /// ImageFolder when `root` holds no image file and some subdirectory does; unlabeled otherwise.
        case automatic
        case labeled
        case unlabeled
    }

    public struct Entry: Sendable, Equatable {
        /// Path relative to the root, `/`-separated.
        public let relativePath: String
        public let path: String
        public let label: Int?
        public let modified: Date
        public let size: Int
    }

    public let root: String
    /// Class names in label order (empty when unlabeled).
    public let classes: [String]
    public let entries: [Entry]
    public var isLabeled: Bool { !classes.isEmpty }

    public static let extensions: Set<String> = ["jpg", "jpeg", "png"]
    /// Bounds on a scan: directory depth and number of files considered.
    public static let maxDepth = 32
    public static let maxFiles = 1_000_000

    /// Lists the folder. `newest`: keep only the N most recently modified images (ties broken by path), still
    /// returned in the deterministic order; the agent's spool window.
    public static func scan(_ root: String, layout: Layout = .automatic, newest: Int? = nil,
                            log: (String) -> Void = { _ in }) throws -> ImageFolder {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDir), isDir.boolValue else {
            throw ImageError(root, .unreadable, "not a directory")
        }
        let top = try listing(root)
        let subdirs = top.filter { $0.isDirectory }.map(\.name)
        let topImages = top.filter { !$0.isDirectory && isImageName($0.name) }
        let labeled: Bool
        switch layout {
        case .labeled: labeled = true
        case .unlabeled: labeled = false
        case .automatic:
            var budget = maxFiles
            labeled = topImages.isEmpty && subdirs.contains { sub in
                var found: [(String, Date, Int)] = []
                walk(root + "/" + sub, relative: sub, depth: 1, budget: &budget, into: &found, log: { _ in })
                return found.contains { isImageName($0.0) }
            }
        }
        var budget = maxFiles
        var entries: [Entry] = []
        var classes: [String] = []
        func add(_ found: [(String, Date, Int)], label: Int?) {
            for (rel, date, size) in found.sorted(by: { codePointsLess($0.0, $1.0) }) {
                guard isImageName(rel) else { log("skipped \(root)/\(rel): not a .jpg, .jpeg or .png file"); continue }
                entries.append(Entry(relativePath: rel, path: root + "/" + rel, label: label, modified: date, size: size))
            }
        }
        if labeled {
            classes = subdirs.sorted(by: codePointsLess)
            for f in top where !f.isDirectory { log("skipped \(root)/\(f.name): not inside a class folder") }
            for (label, name) in classes.enumerated() {
                var found: [(String, Date, Int)] = []
                walk(root + "/" + name, relative: name, depth: 1, budget: &budget, into: &found, log: log)
                add(found, label: label)
            }
        } else {
            var found: [(String, Date, Int)] = []
            walk(root, relative: "", depth: 0, budget: &budget, into: &found, log: log)
            add(found, label: nil)
        }
        if let n = newest, entries.count > max(n, 0) {
            let keep = Set(entries.sorted { a, b in
                a.modified != b.modified ? a.modified > b.modified : codePointsLess(a.relativePath, b.relativePath)
            }.prefix(max(n, 0)).map(\.relativePath))
            entries = entries.filter { keep.contains($0.relativePath) }
        }
        return ImageFolder(root: root, classes: classes, entries: entries)
    }

    /// The decoded, preprocessed images as one NCHW batch; labels when the folder has them.
    public struct Batch: Sendable {
        public let shape: [Int]
        public let data: [Float]
        public let labels: [Int]?
        /// The entries that made it into the batch, in batch order.
        public let entries: [Entry]
        public var count: Int { entries.count }
    }

    /// Decodes and preprocesses every entry; one that fails (corrupt, too large, a size `preprocessing` cannot
    /// bring to the batch's shape) is skipped with one log line. Throws only for an invalid `preprocessing`.
    public func load(_ preprocessing: Preprocessing, limits: DecodeLimits = .default, log: (String) -> Void = { _ in }) throws -> Batch {
        try preprocessing.check()
        var shape: [Int]? = nil
        var data: [Float] = []
        var kept: [Entry] = []
        for e in entries {
            do {
                let image = try ImageDecoder.decode(file: e.path, limits: limits)
                let t = try preprocessing.apply(image)
                if let s = shape, s != t.shape {
                    log("skipped \(e.path): preprocessed to \(t.shape.map(String.init).joined(separator: "x")), the batch is \(s.map(String.init).joined(separator: "x"))")
                    continue
                }
                shape = t.shape
                data.append(contentsOf: t.data)
                kept.append(e)
            } catch let error as ImageError {
                log("skipped \(error)")
            } catch {
                log("skipped \(e.path): \(error)")
            }
        }
        var batchShape = shape ?? [1, preprocessing.channels.count, 0, 0]
        batchShape[0] = kept.count
        return Batch(shape: batchShape, data: data, labels: isLabeled ? kept.map { $0.label! } : nil, entries: kept)
    }

    // MARK: Walking

    struct Item { let name: String; let isDirectory: Bool }

    static func isImageName(_ name: String) -> Bool {
        guard let dot = name.lastIndex(of: ".") else { return false }
        return extensions.contains(name[name.index(after: dot)...].lowercased())
    }

    /// Python's string order (code points), so class indices equal torchvision's.
    static func codePointsLess(_ a: String, _ b: String) -> Bool {
        a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars) { $0.value < $1.value }
    }

    /// Non-hidden entries of a directory; a symlink counts as a directory only if it is not one (never followed).
    static func listing(_ dir: String) throws -> [Item] {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: dir) } catch {
            throw ImageError(dir, .unreadable, "cannot list the directory: \(error.localizedDescription)")
        }
        return names.filter { !$0.hasPrefix(".") }.map { name in
            let attrs = try? FileManager.default.attributesOfItem(atPath: dir + "/" + name)
            return Item(name: name, isDirectory: (attrs?[.type] as? FileAttributeType) == .typeDirectory)
        }
    }

    static func walk(_ dir: String, relative: String, depth: Int, budget: inout Int,
                     into found: inout [(String, Date, Int)], log: (String) -> Void) {
        guard depth <= maxDepth else { log("skipped \(dir): deeper than \(maxDepth) levels"); return }
        let items: [Item]
        do { items = try listing(dir) } catch { log("skipped \(error)"); return }
        for item in items.sorted(by: { codePointsLess($0.name, $1.name) }) {
            let rel = relative.isEmpty ? item.name : relative + "/" + item.name
            let path = dir + "/" + item.name
            if item.isDirectory {
                walk(path, relative: rel, depth: depth + 1, budget: &budget, into: &found, log: log)
                continue
            }
            guard budget > 0 else { log("skipped \(path): more than \(maxFiles) files"); return }
            budget -= 1
            // Symlinks to files are followed for the date and size (the decoder reads through them too).
            guard let attrs = try? FileManager.default.attributesOfItem(atPath: URL(fileURLWithPath: path).resolvingSymlinksInPath().path) else {
                log("skipped \(path): cannot stat")
                continue
            }
            if (attrs[.type] as? FileAttributeType) == .typeSymbolicLink || (attrs[.type] as? FileAttributeType) == .typeDirectory {
                log("skipped \(path): a symbolic link to a directory or a dangling link")
                continue
            }
            found.append((rel, attrs[.modificationDate] as? Date ?? .distantPast, (attrs[.size] as? NSNumber)?.intValue ?? 0))
        }
    }
}
