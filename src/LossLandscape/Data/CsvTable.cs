using System.Text;

namespace LossLandscape.Data;

/// <summary>
/// A CSV file read as text: a header row and data rows of equal length (RFC 4180 quoting; blank
/// lines skipped). Every cell keeps its 1-based line and column for error messages.
/// </summary>
public sealed class CsvTable
{
    private CsvTable(string source, string[] header, List<(int Line, string[] Cells)> rows)
    {
        Source = source;
        Header = header;
        Rows = rows;
    }

    /// <summary>The file name or resource the table came from.</summary>
    public string Source { get; }

    /// <summary>The column names.</summary>
    public IReadOnlyList<string> Header { get; }

    /// <summary>The data rows with their line numbers.</summary>
    public IReadOnlyList<(int Line, string[] Cells)> Rows { get; }

    /// <summary>Parses CSV text; <see cref="DataFormatException"/> on a missing header, duplicate column names or ragged rows.</summary>
    public static CsvTable Parse(string text, string source)
    {
        string[]? header = null;
        var rows = new List<(int, string[])>();
        int lineNo = 0;
        using var reader = new StringReader(text);
        while (reader.ReadLine() is { } line)
        {
            lineNo++;
            int startLine = lineNo;
            // A quoted field may span lines: keep reading until the quotes balance.
            while (line.Count(c => c == '"') % 2 == 1 && reader.ReadLine() is { } more)
            {
                lineNo++;
                line += "\n" + more;
            }
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }
            var cells = SplitLine(line);
            if (header is null)
            {
                header = cells.Select(c => c.Trim()).ToArray();
                var dup = header.GroupBy(h => h).FirstOrDefault(g => g.Count() > 1);
                if (dup is not null)
                {
                    throw new DataFormatException($"{source}:{startLine}: the header names column '{dup.Key}' twice");
                }
                if (header.Any(string.IsNullOrEmpty))
                {
                    throw new DataFormatException($"{source}:{startLine}:{Array.FindIndex(header, string.IsNullOrEmpty) + 1}: empty column name in the header");
                }
                continue;
            }
            if (cells.Length != header.Length)
            {
                throw new DataFormatException($"{source}:{startLine}: row has {cells.Length} fields, the header has {header.Length}");
            }
            rows.Add((startLine, cells));
        }
        if (header is null)
        {
            throw new DataFormatException($"{source}: empty file, expected a header row");
        }
        if (rows.Count == 0)
        {
            throw new DataFormatException($"{source}: no data rows after the header");
        }
        return new CsvTable(source, header, rows);
    }

    /// <summary>Reads and parses a file; <see cref="DataFormatException"/> if it does not exist or cannot be read.</summary>
    public static CsvTable Load(string path)
    {
        if (Directory.Exists(path))
        {
            throw new DataFormatException($"{path}: is a directory, expected a CSV file");
        }
        if (!File.Exists(path))
        {
            throw new DataFormatException($"{path}: file not found");
        }
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataFormatException($"{path}: cannot read: {e.Message}");
        }
        return Parse(text, path);
    }

    private static string[] SplitLine(string line)
    {
        var cells = new List<string>();
        var cell = new StringBuilder();
        bool quoted = false;
        for (int k = 0; k < line.Length; k++)
        {
            char c = line[k];
            if (quoted)
            {
                if (c == '"' && k + 1 < line.Length && line[k + 1] == '"')
                {
                    cell.Append('"');
                    k++;
                }
                else if (c == '"')
                {
                    quoted = false;
                }
                else
                {
                    cell.Append(c);
                }
            }
            else if (c == '"')
            {
                quoted = true;
            }
            else if (c == ',')
            {
                cells.Add(cell.ToString());
                cell.Clear();
            }
            else if (c != '\r')
            {
                cell.Append(c);
            }
        }
        cells.Add(cell.ToString());
        return cells.ToArray();
    }
}
