namespace LossLandscape.Cli;

/// <summary>
/// Checks, before any work, that a directory option (<c>verify --report DIR</c>, <c>report --out DIR</c>) can be
/// written: a command that runs for minutes must not fail at its last step because DIR is a file or lies under one.
/// </summary>
internal static class OutputDirectory
{
    /// <summary>
    /// Refuses with <see cref="UsageException"/> when <paramref name="directory"/> is an existing file, lies under a file,
    /// or its nearest existing ancestor directory does not take a new file (probed by creating and deleting one).
    /// </summary>
    /// <param name="option">The option, for the message (e.g. <c>--report</c>).</param>
    /// <param name="directory">The directory the command will create or write into.</param>
    public static void RequireWritable(string option, string directory)
    {
        ArgumentNullException.ThrowIfNull(option);
        ArgumentNullException.ThrowIfNull(directory);
        string quoted = LandscapeApp.Shorten(directory);
        string full;
        try
        {
            full = Path.GetFullPath(directory);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            throw new UsageException($"{option}: '{quoted}' is not a usable path");
        }
        for (string? at = full; at is not null; at = Path.GetDirectoryName(at))
        {
            if (File.Exists(at))
            {
                throw new UsageException(at == full
                    ? $"{option}: '{quoted}' is a file, not a directory"
                    : $"{option}: '{quoted}' lies under '{LandscapeApp.Shorten(at)}', which is a file");
            }
            if (Directory.Exists(at))
            {
                Probe(option, at);
                return;
            }
        }
    }

    /// <summary>Creates and deletes a hidden file in <paramref name="directory"/>; a failure is a usage error naming the reason.</summary>
    private static void Probe(string option, string directory)
    {
        string probe = Path.Combine(directory, $".landscape-probe-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            using (File.Create(probe, 1, FileOptions.DeleteOnClose))
            {
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"{option}: cannot write in '{LandscapeApp.Shorten(directory)}': {e.Message.ReplaceLineEndings(" ")}");
        }
    }
}
