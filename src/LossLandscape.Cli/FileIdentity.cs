using System.Runtime.InteropServices;

namespace LossLandscape.Cli;

/// <summary>
/// Which file a path names, for refusing an output that would overwrite an input: the path with every symbolic link
/// resolved (<see cref="Canonical"/>), and for an existing file on Linux its device and inode numbers, which hard links
/// share (<see cref="SameFile"/>).
/// </summary>
/// <remarks>
/// Two names are one file when their canonical paths are equal (symbolic links, <c>..</c>, repeated separators) or,
/// both existing, when stat(2) gives the same (st_dev, st_ino) (hard links; POSIX.1-2017 &lt;sys/stat.h&gt;: "The
/// st_ino and st_dev fields taken together uniquely identify the file within the system"). Where stat is not available
/// (not Linux, or a C library without the <c>stat</c> symbol) only the paths are compared.
/// </remarks>
internal static class FileIdentity
{
    /// <summary>Links followed through one path before giving up, Linux's limit for one lookup (MAXSYMLINKS = 40).</summary>
    private const int MaxLinks = 40;

    /// <summary>A buffer larger than struct stat on every 64-bit Linux ABI (144 bytes on x86-64, 128 on arm64).</summary>
    private const int StatBufferBytes = 256;

    /// <summary>Whether <paramref name="a"/> and <paramref name="b"/> name the same file (see the class remarks).</summary>
    public static bool SameFile(string a, string b)
    {
        if (string.Equals(Canonical(a), Canonical(b), StringComparison.Ordinal))
        {
            return true;
        }
        return Inode(a) is { } x && Inode(b) is { } y && x == y;
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

    /// <summary>(st_dev, st_ino) of an existing file on 64-bit Linux; null elsewhere or when stat fails.</summary>
    private static (ulong Device, ulong Inode)? Inode(string path)
    {
        if (!OperatingSystem.IsLinux() || IntPtr.Size != 8 || !Path.Exists(path))
        {
            return null;
        }
        try
        {
            var buffer = new byte[StatBufferBytes];
            if (Stat(path, buffer) != 0)
            {
                return null;
            }
            // struct stat on 64-bit Linux (x86-64 and the generic ABI of arm64 alike) begins dev_t st_dev; ino_t st_ino; both 64-bit.
            return (BitConverter.ToUInt64(buffer, 0), BitConverter.ToUInt64(buffer, 8));
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            return null; // glibc before 2.33 exports only __xstat: compare paths alone
        }
    }

#pragma warning disable SYSLIB1054 // LibraryImport would need unsafe code for one call per file.
    [DllImport("libc", EntryPoint = "stat", SetLastError = true)]
    private static extern int Stat([MarshalAs(UnmanagedType.LPUTF8Str)] string path, byte[] buffer);
#pragma warning restore SYSLIB1054
}
