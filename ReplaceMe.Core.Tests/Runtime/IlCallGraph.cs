using System.Collections.Immutable;
using System.Reflection;
using System.Reflection.Emit;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;
using System.Text;

namespace ReplaceMe.Core.Tests.Runtime;

/// <summary>One call instruction (call, callvirt, newobj, ldftn, ldvirtftn) found in a method body.</summary>
/// <param name="Caller">The calling method, as <see cref="IlCallGraph.MethodKey"/> names it.</param>
/// <param name="CallerReturns">The calling method's return type.</param>
/// <param name="CallerTopLevelType">The caller's outermost declaring type (lambdas and iterators map to their user type).</param>
/// <param name="Target">The called method's key.</param>
/// <param name="TargetAssembly">The simple name of the assembly that declares the target.</param>
/// <param name="Offset">IL offset of the instruction.</param>
/// <param name="NextOpCode">The instruction after the call, or null at the end of the body.</param>
/// <param name="NextOperandToken">The metadata token operand of that next instruction, or 0.</param>
internal sealed record IlCall(string Caller, string CallerReturns, string CallerTopLevelType, string Target, string TargetAssembly, int Offset, ILOpCode? NextOpCode, int NextOperandToken);

/// <summary>
/// Reads the IL of every method in an assembly and lists its calls by a stable, signature-bearing key such as
/// <c>TorchSharp.torch+Tensor::add(TorchSharp.torch+Tensor)</c>. The compiled IL is what runs: it shows the
/// operators, implicit conversions and overloads the compiler actually chose, which source text does not.
/// </summary>
internal static class IlCallGraph
{
    private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(o => o.Value);

    /// <summary>Every call instruction in every method body of the assembly at <paramref name="path"/>.</summary>
    public static List<IlCall> Calls(string path)
    {
        using var pe = new PEReader(File.OpenRead(path));
        var md = pe.GetMetadataReader();
        var selfName = md.GetString(md.GetAssemblyDefinition().Name);
        var names = new SignatureNames(md);
        var calls = new List<IlCall>();
        foreach (var typeHandle in md.TypeDefinitions)
        {
            var type = md.GetTypeDefinition(typeHandle);
            var topLevel = TopLevelName(md, typeHandle);
            foreach (var methodHandle in type.GetMethods())
            {
                var method = md.GetMethodDefinition(methodHandle);
                if (method.RelativeVirtualAddress == 0) continue;
                var caller = MethodKey(md, names, methodHandle);
                var returns = method.DecodeSignature(names, null).ReturnType;
                var body = pe.GetMethodBody(method.RelativeVirtualAddress);
                foreach (var (offset, opcode, token, nextOp, nextToken) in Instructions(body.GetILReader()))
                {
                    if (opcode != ILOpCode.Call && opcode != ILOpCode.Callvirt && opcode != ILOpCode.Newobj &&
                        opcode != ILOpCode.Ldftn && opcode != ILOpCode.Ldvirtftn) continue;
                    var (target, assembly) = Resolve(md, names, MetadataTokens.EntityHandle(token), selfName);
                    calls.Add(new IlCall(caller, returns, topLevel, target, assembly, offset, nextOp, nextToken));
                }
            }
        }
        return calls;
    }

    /// <summary>The key of a method defined in the assembly: <c>Namespace.Outer+Inner::Name(ParamType, …)</c>.</summary>
    public static string MethodKey(MetadataReader md, SignatureNames names, MethodDefinitionHandle handle)
    {
        var method = md.GetMethodDefinition(handle);
        var sig = method.DecodeSignature(names, null);
        return Key(TypeName(md, method.GetDeclaringType()), md.GetString(method.Name), sig.ParameterTypes);
    }

    /// <summary>Name of the field a <c>stfld</c>/<c>stsfld</c> token refers to, with its declaring type.</summary>
    public static string FieldName(string assemblyPath, int token)
    {
        using var pe = new PEReader(File.OpenRead(assemblyPath));
        var md = pe.GetMetadataReader();
        var handle = MetadataTokens.EntityHandle(token);
        if (handle.Kind == HandleKind.FieldDefinition)
        {
            var f = md.GetFieldDefinition((FieldDefinitionHandle)handle);
            return TypeName(md, f.GetDeclaringType()) + "::" + md.GetString(f.Name);
        }
        if (handle.Kind == HandleKind.MemberReference)
        {
            var m = md.GetMemberReference((MemberReferenceHandle)handle);
            return md.GetString(m.Name);
        }
        return handle.Kind.ToString();
    }

    private static string Key(string type, string name, ImmutableArray<string> parameters) =>
        $"{type}::{name}({string.Join(", ", parameters)})";

    private static (string Key, string Assembly) Resolve(MetadataReader md, SignatureNames names, EntityHandle handle, string selfName)
    {
        switch (handle.Kind)
        {
            case HandleKind.MethodDefinition:
                return (MethodKey(md, names, (MethodDefinitionHandle)handle), selfName);
            case HandleKind.MethodSpecification:
                return Resolve(md, names, md.GetMethodSpecification((MethodSpecificationHandle)handle).Method, selfName);
            case HandleKind.MemberReference:
            {
                var member = md.GetMemberReference((MemberReferenceHandle)handle);
                var (type, assembly) = ParentName(md, names, member.Parent, selfName);
                if (member.GetKind() != MemberReferenceKind.Method) return (type + "::" + md.GetString(member.Name), assembly);
                var sig = member.DecodeMethodSignature(names, null);
                return (Key(type, md.GetString(member.Name), sig.ParameterTypes), assembly);
            }
            default:
                return (handle.Kind.ToString(), "?");
        }
    }

    private static (string Type, string Assembly) ParentName(MetadataReader md, SignatureNames names, EntityHandle parent, string selfName)
    {
        switch (parent.Kind)
        {
            case HandleKind.TypeReference:
                return (TypeName(md, (TypeReferenceHandle)parent), ScopeAssembly(md, (TypeReferenceHandle)parent));
            case HandleKind.TypeDefinition:
                return (TypeName(md, (TypeDefinitionHandle)parent), selfName);
            case HandleKind.TypeSpecification:
            {
                // A generic instantiation: name the generic type itself, so that calls match the definition's key.
                var blob = md.GetBlobReader(md.GetTypeSpecification((TypeSpecificationHandle)parent).Signature);
                var code = blob.ReadSignatureTypeCode();
                if (code == SignatureTypeCode.GenericTypeInstance)
                {
                    blob.ReadSignatureTypeCode();
                    var generic = blob.ReadTypeHandle();
                    return ParentName(md, names, generic, selfName);
                }
                return ("<typespec>", "?");
            }
            case HandleKind.MethodDefinition:
            {
                var method = md.GetMethodDefinition((MethodDefinitionHandle)parent);
                return (TypeName(md, method.GetDeclaringType()), selfName);
            }
            default:
                return (parent.Kind.ToString(), "?");
        }
    }

    private static string ScopeAssembly(MetadataReader md, TypeReferenceHandle handle)
    {
        var type = md.GetTypeReference(handle);
        return type.ResolutionScope.Kind switch
        {
            HandleKind.AssemblyReference => md.GetString(md.GetAssemblyReference((AssemblyReferenceHandle)type.ResolutionScope).Name),
            HandleKind.TypeReference => ScopeAssembly(md, (TypeReferenceHandle)type.ResolutionScope),
            _ => md.GetString(md.GetAssemblyDefinition().Name),
        };
    }

    internal static string TypeName(MetadataReader md, TypeDefinitionHandle handle)
    {
        var type = md.GetTypeDefinition(handle);
        var name = md.GetString(type.Name);
        var declaring = type.GetDeclaringType();
        if (!declaring.IsNil) return TypeName(md, declaring) + "+" + name;
        var ns = md.GetString(type.Namespace);
        return ns.Length == 0 ? name : ns + "." + name;
    }

    internal static string TypeName(MetadataReader md, TypeReferenceHandle handle)
    {
        var type = md.GetTypeReference(handle);
        var name = md.GetString(type.Name);
        if (type.ResolutionScope.Kind == HandleKind.TypeReference)
            return TypeName(md, (TypeReferenceHandle)type.ResolutionScope) + "+" + name;
        var ns = md.GetString(type.Namespace);
        return ns.Length == 0 ? name : ns + "." + name;
    }

    private static string TopLevelName(MetadataReader md, TypeDefinitionHandle handle)
    {
        var type = md.GetTypeDefinition(handle);
        var declaring = type.GetDeclaringType();
        return declaring.IsNil ? TypeName(md, handle) : TopLevelName(md, declaring);
    }

    /// <summary>The metadata-token operands (methods, fields, types) of every instruction of a method body.</summary>
    public static IEnumerable<int> Tokens(BlobReader il) =>
        Instructions(il).Where(i => i.Token != 0).Select(i => i.Token);

    private static IEnumerable<(int Offset, ILOpCode OpCode, int Token, ILOpCode? NextOp, int NextToken)> Instructions(BlobReader il)
    {
        var decoded = new List<(int Offset, ILOpCode OpCode, int Token)>();
        while (il.RemainingBytes > 0)
        {
            int offset = il.Offset;
            short value = il.ReadByte();
            if (value == 0xFE) value = unchecked((short)(0xFE00 | il.ReadByte()));
            var opcode = OpCodesByValue[value];
            int token = 0;
            switch (opcode.OperandType)
            {
                case OperandType.InlineNone: break;
                case OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar: il.ReadByte(); break;
                case OperandType.InlineVar: il.ReadInt16(); break;
                case OperandType.InlineI8 or OperandType.InlineR: il.ReadInt64(); break;
                case OperandType.InlineSwitch:
                    int n = il.ReadInt32();
                    for (int i = 0; i < n; i++) il.ReadInt32();
                    break;
                case OperandType.InlineMethod or OperandType.InlineField or OperandType.InlineTok or OperandType.InlineType:
                    token = il.ReadInt32();
                    break;
                default: il.ReadInt32(); break;
            }
            decoded.Add((offset, (ILOpCode)(ushort)value, token));
        }
        for (int i = 0; i < decoded.Count; i++)
        {
            var next = i + 1 < decoded.Count ? decoded[i + 1] : default;
            yield return (decoded[i].Offset, decoded[i].OpCode, decoded[i].Token,
                i + 1 < decoded.Count ? next.OpCode : null, i + 1 < decoded.Count ? next.Token : 0);
        }
    }
}

/// <summary>Turns signature blobs into readable type names (generic arguments by position, e.g. <c>!0</c>, <c>!!0</c>).</summary>
internal sealed class SignatureNames(MetadataReader md) : ISignatureTypeProvider<string, object?>
{
    public string GetArrayType(string elementType, ArrayShape shape) => elementType + "[" + new string(',', shape.Rank - 1) + "]";
    public string GetByReferenceType(string elementType) => elementType + "&";
    public string GetFunctionPointerType(MethodSignature<string> signature) => "fnptr";
    public string GetGenericInstantiation(string genericType, ImmutableArray<string> typeArguments) =>
        genericType + "<" + string.Join(",", typeArguments) + ">";
    public string GetGenericMethodParameter(object? genericContext, int index) => "!!" + index;
    public string GetGenericTypeParameter(object? genericContext, int index) => "!" + index;
    public string GetModifiedType(string modifier, string unmodifiedType, bool isRequired) => unmodifiedType;
    public string GetPinnedType(string elementType) => elementType;
    public string GetPointerType(string elementType) => elementType + "*";
    public string GetPrimitiveType(PrimitiveTypeCode typeCode) => typeCode.ToString();
    public string GetSZArrayType(string elementType) => elementType + "[]";
    public string GetTypeFromDefinition(MetadataReader reader, TypeDefinitionHandle handle, byte rawTypeKind) => IlCallGraph.TypeName(md, handle);
    public string GetTypeFromReference(MetadataReader reader, TypeReferenceHandle handle, byte rawTypeKind) => IlCallGraph.TypeName(md, handle);
    public string GetTypeFromSpecification(MetadataReader reader, object? genericContext, TypeSpecificationHandle handle, byte rawTypeKind) =>
        md.GetTypeSpecification(handle).DecodeSignature(this, genericContext);
}
