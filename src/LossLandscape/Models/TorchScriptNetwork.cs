using System.Runtime.InteropServices;
using LossLandscape.Engine;
using LossLandscape.Models.Activations;
using TorchSharp;
using static TorchSharp.torch;

namespace LossLandscape.Models;

/// <summary>One parameter of a TorchScript module: its name in <c>named_parameters()</c> order, its shape and the type it was saved in.</summary>
/// <param name="Name">The dotted name, e.g. <c>conv1.weight</c>.</param>
/// <param name="Shape">The tensor's shape.</param>
/// <param name="SavedType">The element type in the file (float32 for a network trained in PyTorch's default precision).</param>
public sealed record ScriptParameter(string Name, IReadOnlyList<long> Shape, ScalarType SavedType)
{
    /// <summary>The number of values, the product of <see cref="Shape"/>.</summary>
    public long Count => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// A TorchScript module saved by PyTorch (<c>torch.jit.save</c> of a scripted or traced module) as a
/// <see cref="FeedforwardNetwork"/>: f_p(X) is the module's <c>forward</c> with its parameters replaced by the slices of the
/// flat p ∈ ℝⁿ, in <c>named_parameters()</c> order, each flattened row-major; its buffers (batch-norm running statistics)
/// are fixed values, and the module is evaluated in eval mode, as PyHessian evaluates.
/// </summary>
/// <remarks>
/// <para>How p enters the module: before each forward every parameter attribute of the module is set
/// (<c>Module::setattr</c>) to its slice of p, a view in p's autograd graph, so that the outputs are differentiable in p to
/// any order the module's operations allow; afterwards the attributes are set back to detached values. f is therefore a
/// function of the flat vector exactly as the project's own networks are, and every command takes the module.</para>
/// <para>Precision: parameters saved in float32 (or float16, bfloat16) are widened to float64 exactly, and the module
/// computes in float64, unless the network is opened with <see cref="ScalarType.Float32"/> as its compute type: then p's
/// slices and the rows are rounded to float32 on the way in and the outputs widened on the way out (faster convolutions;
/// numbers agree with float64 to about 1e−7 relative, so decisions of rank and inertia refuse such a model,
/// <see cref="FeedforwardNetwork.ComputesInFloat64"/>).</para>
/// <para>TorchScript says nothing of the shape of its input: the network is opened for rows of a given shape (the data's,
/// e.g. [1, 28, 28]), and ℓ is read from one forward pass on a zero row.</para>
/// </remarks>
public sealed class TorchScriptNetwork : FeedforwardNetwork
{
    private readonly jit.ScriptModule<Tensor, Tensor> _module;
    private readonly (jit.ScriptModule Owner, string Attribute)[] _slots;
    private readonly Tensor[] _values;
    private readonly long[] _inputShape;

    private TorchScriptNetwork(string path, jit.ScriptModule<Tensor, Tensor> module, IReadOnlyList<ScriptParameter> parameters, double[] point,
        IReadOnlyList<long> inputShape, ScalarType computeType)
    {
        Path = path;
        _module = module;
        Parameters = parameters;
        ComputeType = computeType;
        _inputShape = [.. inputShape];
        InputDim = checked((int)_inputShape.Aggregate(1L, (a, b) => a * b));
        ParameterCount = checked((int)parameters.Sum(p => p.Count));
        _slots = Slots(module, parameters);
        _values = module.named_parameters().Select(p => p.parameter.detach().DetachFromDisposeScope()).ToArray();
        OutputDim = ProbeOutputs(point);
        CodeDigest = Digest(path);
    }

    /// <summary>The file the module was read from.</summary>
    public string Path { get; }

    /// <summary>The module's parameters, in <c>named_parameters()</c> order: p is their concatenation.</summary>
    public IReadOnlyList<ScriptParameter> Parameters { get; }

    /// <summary>The names of the module's buffers (fixed: batch-norm running statistics and counters).</summary>
    public IReadOnlyList<string> Buffers => _module.named_buffers().Select(b => b.name).ToArray();

    /// <summary>The module's buffers with their values in float64 (batch-norm running statistics, counters), in <c>named_buffers()</c> order.</summary>
    public IReadOnlyList<(string Name, double[] Values)> BufferValues()
    {
        using var scope = NewDisposeScope();
        return _module.named_buffers().Select(b => (b.name, b.buffer.detach().reshape(-1).to_type(float64).data<double>().ToArray())).ToArray();
    }

    /// <summary>
    /// A digest of what the module computes besides its parameters and buffers: its compiled code and constants (the entries
    /// <c>code/…</c> and <c>constants.pkl</c> of the archive, debug information left out). Two files with the same digest run the
    /// same code; the same network scripted and traced do not.
    /// </summary>
    public string CodeDigest { get; }

    /// <summary>The type the module computes in: float64 (the default), or float32 when opened so (class remarks).</summary>
    public ScalarType ComputeType { get; }

    /// <inheritdoc />
    public override bool ComputesInFloat64 => ComputeType == ScalarType.Float64;

    /// <inheritdoc />
    public override int InputDim { get; }

    /// <inheritdoc />
    public override IReadOnlyList<long> InputShape => _inputShape;

    /// <inheritdoc />
    public override int OutputDim { get; }

    /// <inheritdoc />
    public override int ParameterCount { get; }

    /// <summary>TorchScript does not say which activations the module applies: none are listed.</summary>
    public override IReadOnlyList<Activation> DistinctActivations => [];

    /// <summary>One line for people: what the module is and how it is evaluated.</summary>
    public string Describe() =>
        $"TorchScript module ({Parameters.Count} parameter tensors, {Buffers.Count} buffers fixed), evaluated in eval mode as PyHessian does, in {(ComputesInFloat64 ? "float64" : "float32")}";

    /// <summary>Whether <paramref name="path"/> is a TorchScript file: a zip archive (PyTorch's format since 1.6) holding <c>code/</c> and <c>data.pkl</c>.</summary>
    public static bool IsTorchScriptFile(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
        {
            return false;
        }
        Span<byte> head = stackalloc byte[4];
        using var stream = File.OpenRead(path);
        return stream.ReadAtLeast(head, 4, throwOnEndOfStream: false) == 4 && head[0] == (byte)'P' && head[1] == (byte)'K' && head[2] == 3 && head[3] == 4;
    }

    /// <summary>
    /// The parameters of the TorchScript module in <paramref name="path"/>, without binding it to rows (what <c>info</c> shows),
    /// and the point p they hold, widened to float64.
    /// </summary>
    /// <exception cref="ModelFormatException">The file is not a TorchScript module, or has no floating-point parameters.</exception>
    public static (IReadOnlyList<ScriptParameter> Parameters, double[] Point) Inspect(string path)
    {
        using var module = LoadModule(path);
        var parameters = ParametersOf(path, module);
        return (parameters, PointOf(module));
    }

    /// <summary>
    /// Opens the TorchScript module in <paramref name="path"/> for rows of shape <paramref name="inputShape"/>: the network and
    /// the point p its saved parameters hold (widened to float64, exactly).
    /// </summary>
    /// <param name="path">A file written by <c>torch.jit.save</c>.</param>
    /// <param name="inputShape">The shape of one row as the module takes it (e.g. [1, 28, 28]; the data's shape).</param>
    /// <param name="computeType">float64 (default) or float32 (class remarks).</param>
    /// <exception cref="ModelFormatException">The file is not a TorchScript module, its parameters are not floating-point, or its forward fails on rows of that shape or does not return d × ℓ.</exception>
    public static NetworkPoint Open(string path, IReadOnlyList<long> inputShape, ScalarType computeType = ScalarType.Float64)
    {
        ArgumentNullException.ThrowIfNull(inputShape);
        if (computeType is not (ScalarType.Float64 or ScalarType.Float32))
        {
            throw new LandscapeInputException($"a TorchScript module computes in float64 or float32, not {computeType}");
        }
        if (inputShape.Count == 0 || inputShape.Any(s => s < 1) || inputShape.Aggregate(1.0, (a, b) => a * b) > int.MaxValue)
        {
            throw new LandscapeInputException($"the input shape [{string.Join(", ", inputShape)}] is not a shape of positive sizes");
        }
        var module = LoadModule(path);
        try
        {
            var parameters = ParametersOf(path, module);
            var point = PointOf(module);
            module.to(computeType);
            foreach (var (_, parameter) in module.named_parameters())
            {
                parameter.requires_grad_(false); // p is the leaf; the module's own tensors are values
            }
            module.eval();
            return new NetworkPoint(new TorchScriptNetwork(path, module, parameters, point, inputShape, computeType), point);
        }
        catch
        {
            module.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Writes the module with its parameters set to <paramref name="parameters"/> (in float64) to <paramref name="path"/>, atomically:
    /// a TorchScript file PyTorch loads with <c>torch.jit.load</c> (call <c>.float()</c> on it for float32 inputs).
    /// </summary>
    public void Save(string path, IReadOnlyList<double> parameters)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(parameters);
        if (parameters.Count != ParameterCount)
        {
            throw new LandscapeInputException($"{parameters.Count} parameters for a module with n = {ParameterCount}");
        }
        using var scope = NewDisposeScope();
        using var copy = LoadModule(Path);
        copy.to(ScalarType.Float64);
        var slots = Slots(copy, Parameters);
        var p = tensor(parameters.ToArray(), dtype: float64);
        long offset = 0;
        for (int k = 0; k < slots.Length; k++)
        {
            slots[k].Owner.set_attribute(slots[k].Attribute, p.narrow(0, offset, Parameters[k].Count).view([.. Parameters[k].Shape]).clone());
            offset += Parameters[k].Count;
        }
        using var scratch = AtomicFile.Scratch("pt");
        jit.save(copy, scratch.Name);
        scratch.Position = 0;
        AtomicFile.Write(path, stream => scratch.CopyTo(stream));
    }

    /// <inheritdoc />
    protected override Tensor ForwardScaled(Tensor parameters, Tensor scaledInputs)
    {
        using var scope = NewDisposeScope();
        var rows = scaledInputs.view([scaledInputs.shape[0], .. _inputShape]);
        long offset = 0;
        try
        {
            for (int k = 0; k < _slots.Length; k++)
            {
                long count = Parameters[k].Count;
                var slice = parameters.narrow(0, offset, count).view([.. Parameters[k].Shape]);
                _slots[k].Owner.set_attribute(_slots[k].Attribute, ComputesInFloat64 ? slice : slice.to_type(ComputeType));
                offset += count;
            }
            var outputs = Call(ComputesInFloat64 ? rows : rows.to_type(ComputeType));
            return (ComputesInFloat64 ? outputs : outputs.to_type(float64)).MoveToOuterDisposeScope();
        }
        finally
        {
            for (int k = 0; k < _slots.Length; k++)
            {
                _slots[k].Owner.set_attribute(_slots[k].Attribute, _values[k]);
            }
        }
    }

    /// <summary>
    /// J by reverse mode, one backward pass per output entry (ℓd passes over one forward): TorchScript gives no per-sample
    /// gradients, so this is the generic path, exact and as slow as the reference it is (used for J itself, on few rows).
    /// </summary>
    protected override void AccumulateJacobian(Tensor parameters, Tensor scaledInputs, Tensor jacobian)
    {
        using var grad = enable_grad();
        var leaf = parameters.detach().requires_grad_(true);
        var outputs = ForwardScaled(leaf, scaledInputs).reshape(-1);
        for (long r = 0; r < outputs.shape[0]; r++)
        {
            using var rowScope = NewDisposeScope();
            var row = autograd.grad([outputs[r]], [leaf], retain_graph: true, allow_unused: true)[0];
            if (row is not null && !row.IsInvalid)
            {
                jacobian[r].copy_(row); // each row written once, into the zeroed buffer
            }
        }
    }

    private Tensor Call(Tensor rows)
    {
        Tensor outputs;
        try
        {
            outputs = _module.call(rows);
        }
        catch (ExternalException e)
        {
            throw new ModelFormatException($"{Path}: the module's forward failed on rows of shape [{string.Join(", ", _inputShape)}]: {FirstLine(e.Message)}", e);
        }
        if (outputs.dim() == 1 && rows.shape[0] > 0)
        {
            outputs = outputs.unsqueeze(1);
        }
        if (outputs.dim() != 2 || outputs.shape[0] != rows.shape[0])
        {
            throw new ModelFormatException($"{Path}: the module returned shape [{string.Join(", ", outputs.shape)}] for {rows.shape[0]} rows; expected rows × outputs");
        }
        return outputs;
    }

    /// <summary>
    /// Where each parameter of <paramref name="root"/> lives: the module that owns it (the root, or the submodule its dotted
    /// name's prefix names) and its attribute name there, in <paramref name="parameters"/>' order.
    /// </summary>
    private static (jit.ScriptModule Owner, string Attribute)[] Slots(jit.ScriptModule root, IReadOnlyList<ScriptParameter> parameters)
    {
        var owners = root.named_modules().ToDictionary(m => m.name, m => (jit.ScriptModule)m.module, StringComparer.Ordinal);
        return parameters.Select(p =>
        {
            int dot = p.Name.LastIndexOf('.');
            return dot < 0 ? (root, p.Name) : (owners[p.Name[..dot]], p.Name[(dot + 1)..]);
        }).ToArray();
    }

    /// <summary>ℓ: the width of the module's output on one zero row at <paramref name="point"/>.</summary>
    private int ProbeOutputs(double[] point)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var p = tensor(point, dtype: float64);
        var outputs = ForwardScaled(p, zeros(1, InputDim, dtype: float64));
        return checked((int)outputs.shape[1]);
    }

    private static jit.ScriptModule<Tensor, Tensor> LoadModule(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        TorchRuntime.EnsureInitialized();
        if (!File.Exists(path))
        {
            throw new ModelFormatException($"model file not found: {path}");
        }
        if (!IsTorchScriptFile(path))
        {
            throw new ModelFormatException($"{path}: not a TorchScript file (a zip archive written by torch.jit.save)");
        }
        try
        {
            return jit.load<Tensor, Tensor>(path);
        }
        catch (ExternalException e)
        {
            throw new ModelFormatException($"{path}: not a TorchScript module torch.jit.load can read: {FirstLine(e.Message)}", e);
        }
    }

    private static string Digest(string path)
    {
        using var archive = System.IO.Compression.ZipFile.OpenRead(path);
        using var hash = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        // Entries are "<archive name>/code/…" and "<archive name>/constants.pkl"; the archive's own name is the file's stem, left out.
        static string Inner(string name) => name[(name.IndexOf('/', StringComparison.Ordinal) + 1)..];
        foreach (var entry in archive.Entries.Where(e => Inner(e.FullName) is var inner && ((inner.StartsWith("code/", StringComparison.Ordinal) && !inner.EndsWith(".debug_pkl", StringComparison.Ordinal)) || inner == "constants.pkl"))
            .OrderBy(e => Inner(e.FullName), StringComparer.Ordinal))
        {
            hash.AppendData(System.Text.Encoding.UTF8.GetBytes(Inner(entry.FullName) + "\n"));
            using var stream = entry.Open();
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            hash.AppendData(copy.ToArray());
        }
        return Convert.ToHexString(hash.GetHashAndReset());
    }

    private static ScriptParameter[] ParametersOf(string path, jit.ScriptModule module)
    {
        var parameters = module.named_parameters().Select(p => new ScriptParameter(p.name, p.parameter.shape, p.parameter.dtype)).ToArray();
        if (parameters.Length == 0)
        {
            throw new ModelFormatException($"{path}: the module has no parameters");
        }
        if (parameters.FirstOrDefault(p => !is_floating_point(p.SavedType)) is { } other)
        {
            throw new ModelFormatException($"{path}: parameter '{other.Name}' is {other.SavedType}; a landscape needs floating-point parameters");
        }
        if (parameters.Sum(p => p.Count) > int.MaxValue)
        {
            throw new ModelFormatException($"{path}: the module has more than 2³¹ − 1 parameters");
        }
        return parameters;
    }

    /// <summary>The module's parameters, flattened and concatenated in order, widened to float64 (exact for every floating type).</summary>
    private static double[] PointOf(jit.ScriptModule module)
    {
        using var scope = NewDisposeScope();
        return cat(module.named_parameters().Select(p => p.parameter.detach().reshape(-1).to_type(float64)).ToArray(), 0).data<double>().ToArray();
    }

    /// <summary>The line of a libtorch message that says what went wrong: the interpreter's last <c>…Error: …</c> line (its traceback omitted), else the first.</summary>
    private static string FirstLine(string message)
    {
        var lines = message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        string line = lines.LastOrDefault(l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^[A-Za-z.]*Error: ")) ?? lines.FirstOrDefault() ?? message;
        return line.Length > 200 ? line[..200] + "…" : line;
    }
}
