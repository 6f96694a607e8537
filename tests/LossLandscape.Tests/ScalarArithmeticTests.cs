using System.Collections.Immutable;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;
using LossLandscape.Engine;
using static TorchSharp.torch;

namespace LossLandscape.Tests;

/// <summary>
/// <see cref="ScalarArithmetic"/>: no library code hands libtorch a Scalar that nothing keeps alive. The check reads IL. It
/// finds the TorchSharp members that create a Scalar and never dispose one, and the members that call those. Then it
/// looks for calls to them, and for implicit number-to-Scalar conversions, in the library's assemblies.
/// </summary>
public sealed class ScalarArithmeticTests
{
    private static readonly string[] LibraryAssemblies = ["LossLandscape.dll", "LossLandscape.Cluster.dll", "landscape.dll"];

    /// <summary>TorchSharp's unsafe members, read from its IL once for the tests that need them.</summary>
    private static readonly Lazy<HashSet<string>> Unsafe = new(UnsafeTorchSharpMembers);

    [Fact]
    public void The_Helpers_Compute_What_The_Operators_Compute()
    {
        using var scope = NewDisposeScope();
        var t = tensor(new[] { 1.5, -2.0, 0.25, 3.0 });
        var u = tensor(new[] { 0.5, 4.0, -1.0, 2.0 });
        Assert.Equal((t * 3.0).data<double>().ToArray(), t.Times(3.0).data<double>().ToArray());
        Assert.Equal((t / 3.0).data<double>().ToArray(), t.Over(3.0).data<double>().ToArray());
        Assert.Equal((t + u).data<double>().ToArray(), t.Plus(u).data<double>().ToArray());
        Assert.Equal((t + 0.5).data<double>().ToArray(), t.Plus(0.5).data<double>().ToArray());
        Assert.Equal((t - 0.5).data<double>().ToArray(), t.Minus(0.5).data<double>().ToArray());
        Assert.Equal((1.0 - t).data<double>().ToArray(), t.SubtractedFrom(1.0).data<double>().ToArray());
        Assert.Equal(t.add(u, alpha: -2.5).data<double>().ToArray(), t.clone().PlusScaledInPlace(u, -2.5).data<double>().ToArray());
        Assert.Equal(t.abs().pow(1.5).data<double>().ToArray(), t.abs().Power(1.5).data<double>().ToArray());
        Assert.Equal(t.gt(0.3).data<bool>().ToArray(), t.Above(0.3).data<bool>().ToArray());
        Assert.Equal(new long[] { 3, 2, 1, 0 }, ScalarArithmetic.Range(3, -1, -1, ScalarType.Int64).data<long>().ToArray());
        Assert.Equal(new long[] { 0, 0, 1, 1, 2 }, ScalarArithmetic.Range(0, 5, 1, ScalarType.Int64).FloorOverInPlace(2).data<long>().ToArray());
        Assert.Equal(Math.Sqrt(1.5 * 1.5 + 4 + 0.0625 + 9), t.Norm2().item<double>(), 15);
    }

    [Fact]
    public void The_Check_Finds_An_Unsafe_Call()
    {
        // This test assembly holds one on purpose (UnsafeOnPurpose): the scan must report it, or it proves nothing.
        var unsafeMembers = Unsafe.Value;
        Assert.Contains("Tensor.op_Division(Tensor,Double)", unsafeMembers);
        Assert.Contains("Tensor.add_(Tensor)", unsafeMembers);
        Assert.Contains("Tensor.op_Addition(Tensor,Tensor)", unsafeMembers);
        var found = UnsafeCalls(Path.Combine(AppContext.BaseDirectory, "LossLandscape.Tests.dll"), unsafeMembers);
        Assert.Contains(found, f => f.Contains(nameof(UnsafeOnPurpose), StringComparison.Ordinal));
    }

    [Fact]
    public void No_Library_Method_Passes_An_Unreferenced_Scalar_To_Libtorch()
    {
        var unsafeMembers = Unsafe.Value;
        var found = LibraryAssemblies.SelectMany(a => UnsafeCalls(Path.Combine(AppContext.BaseDirectory, a), unsafeMembers)).ToArray();
        Assert.True(found.Length == 0, "calls that pass a Scalar nothing keeps alive (use ScalarArithmetic):\n" + string.Join("\n", found));
    }

    /// <summary>An unsafe call kept on purpose, for <see cref="The_Check_Finds_An_Unsafe_Call"/>: t / 2 creates a Scalar nothing references.</summary>
    private static Tensor UnsafeOnPurpose(Tensor t) => t / 2.0;

    /// <summary>TorchSharp members that create a Scalar (or call a member that does) and never dispose one, as "Type.name(parameter types)".</summary>
    private static HashSet<string> UnsafeTorchSharpMembers()
    {
        string path = Path.Combine(AppContext.BaseDirectory, "TorchSharp.dll");
        using var stream = File.OpenRead(path);
        using var pe = new PEReader(stream);
        var md = pe.GetMetadataReader();
        var keys = new Dictionary<int, string>();
        var creators = new HashSet<int>();
        var disposers = new HashSet<int>();
        var calls = new Dictionary<int, List<int>>();
        foreach (var typeHandle in md.TypeDefinitions)
        {
            var type = md.GetTypeDefinition(typeHandle);
            string typeName = md.GetString(type.Name);
            foreach (var methodHandle in type.GetMethods())
            {
                var method = md.GetMethodDefinition(methodHandle);
                int token = MetadataTokens.GetToken(methodHandle);
                string name = md.GetString(method.Name);
                keys[token] = Key(typeName, name, method.DecodeSignature(new TypeNames(), null).ParameterTypes);
                if ((typeName == "Scalar" && name == "op_Implicit") || (typeName == "ScalarExtensionMethods" && name.StartsWith("To", StringComparison.Ordinal) && name.EndsWith("Scalar", StringComparison.Ordinal)))
                {
                    creators.Add(token);
                }
                if (typeName == "Scalar" && name == "Dispose")
                {
                    disposers.Add(token);
                }
                calls[token] = method.RelativeVirtualAddress == 0 ? [] : CallTokens(pe.GetMethodBody(method.RelativeVirtualAddress).GetILBytes()!).ToList();
            }
        }
        foreach (var reference in md.MemberReferences)
        {
            if (md.GetString(md.GetMemberReference(reference).Name) == "Dispose")
            {
                disposers.Add(MetadataTokens.GetToken(reference));
            }
        }
        var unsafeTokens = new HashSet<int>(calls.Where(c => !creators.Contains(c.Key) && c.Value.Any(creators.Contains) && !c.Value.Any(disposers.Contains)).Select(c => c.Key));
        // Members that call an unsafe member without disposing anything pass its Scalar on unreferenced too (a + b calls add(b), which makes α = 1).
        for (bool grew = true; grew;)
        {
            grew = false;
            foreach (var (token, callees) in calls)
            {
                if (!unsafeTokens.Contains(token) && !creators.Contains(token) && callees.Any(unsafeTokens.Contains) && !callees.Any(disposers.Contains))
                {
                    grew |= unsafeTokens.Add(token);
                }
            }
        }
        return unsafeTokens.Select(t => keys[t]).ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>Calls in <paramref name="assembly"/> to an unsafe TorchSharp member or to an implicit Scalar conversion.</summary>
    private static List<string> UnsafeCalls(string assembly, HashSet<string> unsafeMembers)
    {
        using var stream = File.OpenRead(assembly);
        using var pe = new PEReader(stream);
        var md = pe.GetMetadataReader();
        var flagged = new Dictionary<int, string>();
        foreach (var handle in md.MemberReferences)
        {
            var reference = md.GetMemberReference(handle);
            if (reference.GetKind() != MemberReferenceKind.Method || reference.Parent.Kind != HandleKind.TypeReference)
            {
                continue;
            }
            string typeName = md.GetString(md.GetTypeReference((TypeReferenceHandle)reference.Parent).Name);
            string name = md.GetString(reference.Name);
            int token = MetadataTokens.GetToken(handle);
            string key = Key(typeName, name, reference.DecodeMethodSignature(new TypeNames(), null).ParameterTypes);
            if (unsafeMembers.Contains(key) || (typeName == "Scalar" && name == "op_Implicit"))
            {
                flagged[token] = key;
            }
        }
        var found = new List<string>();
        foreach (var typeHandle in md.TypeDefinitions)
        {
            var type = md.GetTypeDefinition(typeHandle);
            foreach (var methodHandle in type.GetMethods())
            {
                var method = md.GetMethodDefinition(methodHandle);
                if (method.RelativeVirtualAddress == 0)
                {
                    continue;
                }
                // Every implicit conversion is reported, even into a `using` variable: ToScalar() says what is meant.
                foreach (var token in CallTokens(pe.GetMethodBody(method.RelativeVirtualAddress).GetILBytes()!).Where(flagged.ContainsKey).Distinct())
                {
                    found.Add($"{md.GetString(type.Name)}.{md.GetString(method.Name)}: {flagged[token]}");
                }
            }
        }
        return found;
    }

    private static string Key(string type, string name, ImmutableArray<string> parameters) => $"{type}.{name}({string.Join(",", parameters)})";

    /// <summary>The metadata tokens of the call and callvirt instructions of an IL body (opcode 0x28 or 0x6F, then a method token).</summary>
    private static IEnumerable<int> CallTokens(byte[] il)
    {
        for (int i = 0; i + 4 < il.Length; i++)
        {
            if (il[i] is 0x28 or 0x6F)
            {
                int token = BitConverter.ToInt32(il, i + 1);
                int table = token >>> 24;
                if (table is 0x06 or 0x0A)
                {
                    yield return token;
                }
            }
        }
    }

    /// <summary>Type names of a signature, as the keys spell them (the short name, e.g. Tensor, Double).</summary>
    private sealed class TypeNames : ISignatureTypeProvider<string, object?>
    {
        public string GetPrimitiveType(PrimitiveTypeCode typeCode) => typeCode.ToString();

        public string GetTypeFromDefinition(MetadataReader reader, TypeDefinitionHandle handle, byte rawTypeKind) => reader.GetString(reader.GetTypeDefinition(handle).Name);

        public string GetTypeFromReference(MetadataReader reader, TypeReferenceHandle handle, byte rawTypeKind) => reader.GetString(reader.GetTypeReference(handle).Name);

        public string GetSZArrayType(string elementType) => elementType + "[]";

        public string GetArrayType(string elementType, ArrayShape shape) => elementType + "[,]";

        public string GetByReferenceType(string elementType) => "ref " + elementType;

        public string GetPointerType(string elementType) => elementType + "*";

        public string GetGenericInstantiation(string genericType, ImmutableArray<string> typeArguments) => $"{genericType}<{string.Join(",", typeArguments)}>";

        public string GetGenericMethodParameter(object? genericContext, int index) => "M" + index;

        public string GetGenericTypeParameter(object? genericContext, int index) => "T" + index;

        public string GetFunctionPointerType(MethodSignature<string> signature) => "fn";

        public string GetModifiedType(string modifier, string unmodifiedType, bool isRequired) => unmodifiedType;

        public string GetPinnedType(string elementType) => elementType;

        public string GetTypeFromSpecification(MetadataReader reader, object? genericContext, TypeSpecificationHandle handle, byte rawTypeKind) => "spec";
    }
}
