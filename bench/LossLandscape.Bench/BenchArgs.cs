using System.Globalization;

namespace LossLandscape.Bench;

/// <summary>The benchmarks' options: <c>--name value</c> pairs read from the command line, with a fallback when absent.</summary>
internal static class BenchArgs
{
    /// <summary>The value after <paramref name="name"/>, or <paramref name="fallback"/>.</summary>
    public static string Text(string[] args, string name, string fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
    }

    /// <summary>The integer after <paramref name="name"/>, or <paramref name="fallback"/>.</summary>
    public static int Int(string[] args, string name, int fallback) => int.Parse(Text(args, name, fallback.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);

    /// <summary>The arguments that are neither an option <c>--name</c> nor the value after one.</summary>
    public static string[] Positional(string[] args)
    {
        var words = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i].StartsWith("--", StringComparison.Ordinal))
            {
                i++;
                continue;
            }
            words.Add(args[i]);
        }
        return words.ToArray();
    }
}
