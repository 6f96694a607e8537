namespace LossLandscape.Data;

/// <summary>
/// A CSV file read as text: a header row and data rows of equal length (RFC 4180 quoting; blank
/// lines skipped). Every cell keeps its 1-based line and column for error messages.
/// </summary>
/// <remarks>
/// A string per cell: for small tables. <see cref="DatasetLoader.FromCsv"/> reads a file of any size into a
/// <see cref="Dataset"/> without one, by the same reader (<c>CsvReader</c>) and the same rules.
/// </remarks>
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
        ArgumentNullException.ThrowIfNull(text);
        using var records = new CsvReader(new StringReader(text), source);
        return Read(records, source);
    }

    /// <summary>Reads and parses a file; <see cref="DataFormatException"/> if it does not exist or cannot be read.</summary>
    public static CsvTable Load(string path)
    {
        using var records = CsvReader.OpenFile(path);
        return Read(records, path);
    }

    /// <summary>The table of <paramref name="records"/>: a string per cell.</summary>
    internal static CsvTable Read(ICsvRecords records, string source)
    {
        var header = CsvReader.ReadHeader(records, source);
        var rows = new List<(int, string[])>();
        while (records.Read())
        {
            CsvReader.RequireWidth(records, header.Length, source);
            if (records.Line > int.MaxValue)
            {
                throw new DataFormatException($"{source}:{records.Line}: a table holds lines up to {int.MaxValue}; read a longer file with DatasetLoader.FromCsv");
            }
            var row = records.Row;
            var cells = new string[row.Count];
            for (int k = 0; k < cells.Length; k++)
            {
                cells[k] = row[k].ToString();
            }
            rows.Add(((int)records.Line, cells));
        }
        if (rows.Count == 0)
        {
            throw new DataFormatException($"{source}: no data rows after the header");
        }
        return new CsvTable(source, header, rows);
    }

    /// <summary>The table's records again, the header first (for <see cref="CsvDatasetReader"/>).</summary>
    internal ICsvRecords Records() => new TableRecords(this);

    /// <summary>The table's cells again as records: each row's cells copied into one buffer.</summary>
    private sealed class TableRecords(CsvTable table) : ICsvRecords
    {
        private int _row = -2; // −1: the header
        private char[] _text = new char[256];
        private int[] _starts = new int[16];
        private int[] _lengths = new int[16];
        private int _count;

        public long Line => _row < 0 ? 0 : table.Rows[_row].Line;

        public CsvRow Row => new(_text, default, _starts.AsSpan(0, _count), _lengths.AsSpan(0, _count));

        public bool Read()
        {
            if (_row + 1 >= table.Rows.Count)
            {
                return false;
            }
            _row++;
            IReadOnlyList<string> cells = _row < 0 ? table.Header : table.Rows[_row].Cells;
            _count = cells.Count;
            if (_starts.Length < _count)
            {
                _starts = new int[_count];
                _lengths = new int[_count];
            }
            long total = cells.Sum(c => (long)c.Length);
            if (_text.Length < total)
            {
                _text = new char[total];
            }
            int at = 0;
            for (int k = 0; k < _count; k++)
            {
                cells[k].CopyTo(_text.AsSpan(at));
                _starts[k] = at;
                _lengths[k] = cells[k].Length;
                at += cells[k].Length;
            }
            return true;
        }

        public void Dispose()
        {
        }
    }
}
