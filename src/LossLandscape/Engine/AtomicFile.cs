using System.Globalization;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

namespace LossLandscape.Engine;

/// <summary>
/// Writes an output file all at once: the bytes go to a temporary file beside the target, which is flushed to the disk
/// (fsync) and then renamed over the target. A reader sees the old file or the new one, never a half-written one; a run
/// that dies, fills the disk or hits a file-size limit while writing leaves the old file in place and no temporary file.
/// Every file the library and the CLI write goes through here (<c>AtomicWriteTests</c> scans the sources for any other).
/// </summary>
/// <remarks>
/// <para>The temporary file lies in the target's directory because a rename is atomic only within one file system
/// (POSIX rename(2); <see cref="File.Move(string, string, bool)"/> with overwrite uses it on Unix). It is flushed with
/// <see cref="FileStream.Flush(bool)"/>(true), i.e. fsync(2), before the rename, so that after a crash the name holds
/// either the old bytes or all the new ones (the ext4 "rename without fsync" hazard: T. Ts'o, "Delayed allocation and the
/// zero-length file problem", 2009).</para>
/// <para>A target that is a symbolic link is followed: the file it points to is replaced and the link kept, as
/// <c>sed -i --follow-symlinks</c> does. The replaced file's Unix permissions are carried over to the new one.</para>
/// <para>Only a regular file, or a name where nothing is yet, is renamed over. Standard output given as a path
/// (<c>/dev/stdout</c>), a device (<c>/dev/null</c>), a named pipe or a socket is written in place, never replaced by a
/// file (<see cref="Write"/>).</para>
/// </remarks>
public static class AtomicFile
{
    /// <summary>Links followed from the target before giving up, Linux's limit for one lookup (MAXSYMLINKS = 40).</summary>
    private const int MaxLinks = 40;

    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false);

    /// <summary>
    /// Writes <paramref name="text"/> (UTF-8, no byte-order mark) to <paramref name="path"/>, creating its
    /// directory if needed. A file that cannot be written is bad input: a <see cref="LandscapeInputException"/> naming it.
    /// </summary>
    public static void WriteAllText(string path, string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        Write(path, stream => stream.Write(Utf8.GetBytes(text)));
    }

    /// <summary>Writes <paramref name="bytes"/> to <paramref name="path"/> (see <see cref="WriteAllText"/>).</summary>
    public static void WriteAllBytes(string path, byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        Write(path, stream => stream.Write(bytes));
    }

    /// <summary>
    /// Lets <paramref name="write"/> write the new contents to a stream on a temporary file beside <paramref name="path"/>,
    /// flushes it to the disk, then renames it over <paramref name="path"/>. If <paramref name="write"/> throws, or the
    /// flush or rename fails, the temporary file is removed and the old file is untouched; an I/O failure is a
    /// <see cref="LandscapeInputException"/> naming the path, anything else propagates.
    /// </summary>
    /// <remarks>
    /// The rename is right for a regular file (or none) only. A target that is an open descriptor of this process
    /// (<c>/dev/stdout</c>, <c>/dev/stderr</c>, <c>/dev/fd/N</c>, <c>/proc/self/fd/N</c>) is written through that
    /// descriptor, at its offset, as a shell redirection would be; one that exists and is a device, a named pipe or a
    /// socket is opened (a socket: connected to) and written in place. Either way the contents are first written to
    /// memory, so a <paramref name="write"/> that throws sends nothing, and the node is never renamed over or
    /// replaced.
    /// </remarks>
    public static void Write(string path, Action<Stream> write) => WriteReplacing(path, write, privateFile: false);

    /// <summary>
    /// Writes <paramref name="text"/> as <see cref="WriteAllText"/> does, to a file only its owner may read or write (mode
    /// 0600, whatever the old file's mode): the temporary file is created with that mode, so the contents (a private key) are
    /// never readable by others, not even before the rename.
    /// </summary>
    public static void WritePrivateText(string path, string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        WriteReplacing(path, stream => stream.Write(Utf8.GetBytes(text)), privateFile: true);
    }

    private static void WriteReplacing(string path, Action<Stream> write, bool privateFile)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(write);
        var (full, target, fd) = Resolve(Path.GetFullPath(path));
        if (target is not InPlace.None)
        {
            WriteInPlace(path, full, target, fd, write);
            return;
        }
        string directory = Path.GetDirectoryName(full) ?? ".";
        string temporary = Path.Combine(directory, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            Directory.CreateDirectory(directory);
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
            if (privateFile && !OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }
            using (var stream = new FileStream(temporary, options))
            {
                write(stream);
                stream.Flush(flushToDisk: true); // fsync before the rename: the name never points at unwritten blocks
            }
            if (!privateFile)
            {
                KeepPermissions(full, temporary);
            }
            File.Move(temporary, full, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temporary);
            throw CannotWrite(path, e);
        }
        catch
        {
            TryDelete(temporary); // whatever failed, leave no half-written file behind
            throw;
        }
    }

    /// <summary>
    /// A scratch file of the process's own, in the system's temporary directory under a name nobody else has, opened for
    /// reading and writing and deleted by the system when it is closed (a decompressed copy of a compressed array, read
    /// per batch). It replaces nothing and outlives nothing: the library's only write besides <see cref="Write"/>.
    /// </summary>
    /// <param name="purpose">A word for the file's name (e.g. <c>array</c>), for whoever lists the temporary directory.</param>
    public static FileStream Scratch(string purpose) =>
        new(Path.Combine(Path.GetTempPath(), $"landscape-{Environment.ProcessId}-{Guid.NewGuid():N}.{purpose}"),
            FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.DeleteOnClose);

    /// <summary>
    /// Whether <see cref="Write"/> writes <paramref name="path"/> in place (a descriptor, a device, a named pipe or a
    /// socket) rather than renaming a new file over it; such a target loses nothing when written, so two outputs may
    /// share it (<c>--json /dev/null --out /dev/null</c>).
    /// </summary>
    public static bool WritesInPlace(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return Resolve(Path.GetFullPath(path)).Target is not InPlace.None;
    }

    /// <summary>How a target is written (<see cref="Write"/>'s remarks).</summary>
    private enum InPlace
    {
        /// <summary>A regular file or nothing: the atomic route, a temporary file renamed over the target.</summary>
        None,

        /// <summary>An open descriptor of this process: write(2) on it.</summary>
        Descriptor,

        /// <summary>A device or a named pipe: opened for writing, without truncation.</summary>
        Node,

        /// <summary>A Unix-domain socket: connected to, then sent the bytes.</summary>
        Socket,
    }

    /// <summary>
    /// The file a chain of symbolic links at <paramref name="full"/> ends at (itself when it is no link), and how it is
    /// written (with the descriptor's number for <see cref="InPlace.Descriptor"/>, else −1). A link that lands on a
    /// descriptor path (<c>/dev/stdout</c> → <c>/proc/self/fd/1</c>) stops there: what lies behind it (<c>pipe:[…]</c>, or
    /// a file the shell opened) is reached only through the descriptor.
    /// </summary>
    private static (string Full, InPlace Target, int Descriptor) Resolve(string full)
    {
        for (int i = 0; ; i++)
        {
            if (Descriptor(full) is { } fd)
            {
                return (full, InPlace.Descriptor, fd);
            }
            if (i == MaxLinks || new FileInfo(full).LinkTarget is not { } target)
            {
                return (full, FileEntry.KindOf(full) switch
                {
                    FileKind.CharacterDevice or FileKind.BlockDevice or FileKind.Fifo => InPlace.Node,
                    FileKind.Socket => InPlace.Socket,
                    _ => InPlace.None,
                }, -1);
            }
            full = Path.GetFullPath(target, Path.GetDirectoryName(full) ?? ".");
        }
    }

    /// <summary>
    /// The descriptor number a path names in this process (<c>/dev/fd/N</c>, <c>/proc/self/fd/N</c>,
    /// <c>/proc/thread-self/fd/N</c>, or <c>/proc/PID/fd/N</c> with this process's PID), or null.
    /// </summary>
    private static int? Descriptor(string full)
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }
        string[] parts = full.Split('/', StringSplitOptions.RemoveEmptyEntries);
        bool descriptors = (parts.Length == 3 && parts[0] == "dev" && parts[1] == "fd")
            || (parts.Length == 4 && parts[0] == "proc" && parts[2] == "fd"
                && (parts[1] is "self" or "thread-self" || parts[1] == Environment.ProcessId.ToString(CultureInfo.InvariantCulture)));
        return descriptors && int.TryParse(parts[^1], NumberStyles.None, CultureInfo.InvariantCulture, out int fd) ? fd : null;
    }

    /// <summary>Writes to a descriptor, a device, a named pipe or a socket in place (<see cref="Write"/>'s remarks).</summary>
    private static void WriteInPlace(string path, string full, InPlace target, int fd, Action<Stream> write)
    {
        byte[] bytes;
        using (var memory = new MemoryStream())
        {
            write(memory); // all of it before the target sees a byte: a writer that throws sends nothing
            bytes = memory.ToArray();
        }
        try
        {
            switch (target)
            {
                case InPlace.Descriptor:
                    WriteDescriptor(fd, bytes);
                    break;
                case InPlace.Socket:
                    using (var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
                    {
                        socket.Connect(new UnixDomainSocketEndPoint(full));
                        for (int sent = 0; sent < bytes.Length;)
                        {
                            sent += socket.Send(bytes, sent, bytes.Length - sent, SocketFlags.None);
                        }
                        socket.Shutdown(SocketShutdown.Send);
                    }
                    break;
                default:
                    // FileMode.Open: neither created nor truncated; FileShare.ReadWrite: no advisory lock on a shared node.
                    using (var stream = new FileStream(full, new FileStreamOptions { Mode = FileMode.Open, Access = FileAccess.Write, Share = FileShare.ReadWrite, BufferSize = 0 }))
                    {
                        stream.Write(bytes);
                    }
                    break;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or SocketException)
        {
            throw CannotWrite(path, e);
        }
    }

    /// <summary>write(2) on descriptor <paramref name="fd"/> until every byte is taken, retrying EINTR and EAGAIN.</summary>
    private static void WriteDescriptor(int fd, byte[] bytes)
    {
        const int Interrupted = 4, TryAgain = 11; // EINTR, EAGAIN on Linux
        for (int offset = 0; offset < bytes.Length;)
        {
            nint written = WriteCall(fd, ref bytes[offset], (nuint)(bytes.Length - offset));
            if (written >= 0)
            {
                offset += (int)written;
                continue;
            }
            int error = Marshal.GetLastPInvokeError();
            if (error == TryAgain)
            {
                Thread.Sleep(1); // a non-blocking descriptor whose reader is behind
            }
            else if (error != Interrupted)
            {
                throw new IOException($"descriptor {fd}: {Marshal.GetPInvokeErrorMessage(error)}");
            }
        }
    }

    private static LandscapeInputException CannotWrite(string path, Exception e) =>
        new($"{path}: cannot write: {e.Message.ReplaceLineEndings(" ")}");

    private static void KeepPermissions(string target, string temporary)
    {
        if (!OperatingSystem.IsWindows() && File.Exists(target))
        {
            File.SetUnixFileMode(temporary, File.GetUnixFileMode(target));
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Nothing more to do: the write already failed, and that is the error the user sees.
        }
    }

#pragma warning disable SYSLIB1054 // LibraryImport would need unsafe code for one call per output.
    [DllImport("libc", EntryPoint = "write", SetLastError = true)]
    private static extern nint WriteCall(int fd, ref byte buffer, nuint count);
#pragma warning restore SYSLIB1054
}
