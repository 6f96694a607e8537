using LossLandscape.Engine;

namespace LossLandscape.Cli;

/// <summary>
/// Which file a path names, for refusing an output that would overwrite an input: the path with every symbolic link
/// resolved (<see cref="Canonical"/>), and for an existing file on Linux its device and inode numbers, which hard links
/// share (<see cref="SameFile"/>).
/// </summary>
/// <remarks>
/// Two names are one file when their canonical paths are equal (symbolic links, <c>..</c>, repeated separators) or,
/// both existing, when they have one device and inode (hard links; <see cref="FileEntry.Identity"/>). Where that is not
/// available only the paths are compared.
/// </remarks>
internal static class FileIdentity
{
    /// <summary>Links followed through one path before giving up, Linux's limit for one lookup (MAXSYMLINKS = 40).</summary>
    private const int MaxLinks = 40;

    /// <summary>Whether <paramref name="a"/> and <paramref name="b"/> name the same file (see the class remarks).</summary>
    public static bool SameFile(string a, string b)
    {
        if (string.Equals(Canonical(a), Canonical(b), StringComparison.Ordinal))
        {
            return true;
        }
        return FileEntry.Identity(a) is { } x && FileEntry.Identity(b) is { } y && x == y;
    }

    /// <summary>
    /// The absolute path of <paramref name="path"/> with every symbolic link along it resolved (the file need not
    /// exist: the components that do are resolved, the rest appended).
    /// </summary>
    public static string Canonical(string path) => Canonical(path, 0);

    private static string Canonical(string path, int depth)
    {
        string full = Path.GetFullPath(path);
        if (depth > MaxLinks)
        {
            return full; // a loop of links: the kernel would refuse the path (ELOOP); compare it as written
        }
        string root = Path.GetPathRoot(full) ?? "";
        string current = root;
        int links = 0;
        foreach (var part in full[root.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries))
        {
            string next = Path.Combine(current, part);
            FileSystemInfo info = new FileInfo(next);
            while (info.LinkTarget is { } target && links++ < MaxLinks)
            {
                // A relative link is relative to the directory holding it; the target may itself lie under links.
                next = Path.GetFullPath(target, Path.GetDirectoryName(next) ?? root);
                string directory = Path.GetDirectoryName(next) ?? root;
                next = Path.Combine(Path.GetPathRoot(directory) == directory ? directory : Canonical(directory, depth + 1), Path.GetFileName(next));
                info = new FileInfo(next);
            }
            current = next;
        }
        return current;
    }
}
