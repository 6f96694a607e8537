using System.Runtime.InteropServices;

namespace LossLandscape.Engine;

/// <summary>What a path names, as the file-type bits of its mode (POSIX <c>S_IFMT</c>), after symbolic links.</summary>
public enum FileKind
{
    /// <summary>Nothing exists at the path (or a link in it dangles).</summary>
    Missing,

    /// <summary>A regular file (<c>S_IFREG</c>).</summary>
    Regular,

    /// <summary>A directory (<c>S_IFDIR</c>).</summary>
    Directory,

    /// <summary>A character device such as <c>/dev/null</c> or a terminal (<c>S_IFCHR</c>).</summary>
    CharacterDevice,

    /// <summary>A block device (<c>S_IFBLK</c>).</summary>
    BlockDevice,

    /// <summary>A named pipe (<c>S_IFIFO</c>).</summary>
    Fifo,

    /// <summary>A Unix-domain socket (<c>S_IFSOCK</c>).</summary>
    Socket,
}

/// <summary>
/// The kind (<see cref="FileKind"/>) and the identity (device and inode numbers) of what a path names, read by
/// statx(2), whose result has one layout on every Linux architecture.
/// </summary>
/// <remarks>
/// <para>struct statx (linux/stat.h): <c>stx_mode</c> is the 16-bit field at byte 28, <c>stx_ino</c> the 64-bit field
/// at byte 32, <c>stx_dev_major</c> and <c>stx_dev_minor</c> the 32-bit fields at bytes 136 and 140; the structure is
/// 256 bytes. glibc exports statx from 2.28.</para>
/// <para>Where statx is not available (not Linux, an older C library) the kind falls back to what .NET tells:
/// <see cref="FileKind.Directory"/>, <see cref="FileKind.Regular"/> for any other existing entry, or
/// <see cref="FileKind.Missing"/>; and there is no identity.</para>
/// </remarks>
public static class FileEntry
{
    /// <summary>The size of struct statx.</summary>
    private const int StatxBytes = 256;

    /// <summary>statx's <c>dirfd</c> meaning "relative to the current directory" (<c>AT_FDCWD</c>).</summary>
    private const int CurrentDirectory = -100;

    /// <summary>statx's <c>STATX_TYPE | STATX_MODE | STATX_INO</c>: the fields read here.</summary>
    private const uint TypeModeAndInode = 0x1 | 0x2 | 0x100;

    /// <summary>POSIX <c>S_IFMT</c> and the file-type values under it.</summary>
    private const int TypeMask = 0xF000, SocketType = 0xC000, RegularType = 0x8000, BlockType = 0x6000,
        DirectoryType = 0x4000, CharacterType = 0x2000, FifoType = 0x1000;

    /// <summary>What <paramref name="path"/> names, following symbolic links (see the class remarks).</summary>
    public static FileKind KindOf(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Statx(path) is { } buffer)
        {
            return (BitConverter.ToUInt16(buffer, 28) & TypeMask) switch
            {
                RegularType => FileKind.Regular,
                DirectoryType => FileKind.Directory,
                CharacterType => FileKind.CharacterDevice,
                BlockType => FileKind.BlockDevice,
                FifoType => FileKind.Fifo,
                SocketType => FileKind.Socket,
                _ => FileKind.Regular, // no other type is defined by POSIX; treat as a file
            };
        }
        return Directory.Exists(path) ? FileKind.Directory : File.Exists(path) ? FileKind.Regular : FileKind.Missing;
    }

    /// <summary>
    /// (device, inode) of what <paramref name="path"/> names, following symbolic links: equal for two names of one file,
    /// hard links included (POSIX: "st_ino and st_dev taken together uniquely identify the file within the system");
    /// null where the path names nothing or statx is not available.
    /// </summary>
    public static (ulong Device, ulong Inode)? Identity(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Statx(path) is not { } buffer)
        {
            return null;
        }
        ulong device = ((ulong)BitConverter.ToUInt32(buffer, 136) << 32) | BitConverter.ToUInt32(buffer, 140);
        return (device, BitConverter.ToUInt64(buffer, 32));
    }

    /// <summary>The struct statx of <paramref name="path"/>, or null when it cannot be read.</summary>
    private static byte[]? Statx(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }
        try
        {
            var buffer = new byte[StatxBytes];
            return StatxCall(CurrentDirectory, path, 0, TypeModeAndInode, buffer) == 0 ? buffer : null;
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            return null; // glibc before 2.28: the fallback of the class remarks
        }
    }

#pragma warning disable SYSLIB1054 // LibraryImport would need unsafe code for one call per path.
    [DllImport("libc", EntryPoint = "statx", SetLastError = true)]
    private static extern int StatxCall(int directory, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, byte[] buffer);
#pragma warning restore SYSLIB1054
}
