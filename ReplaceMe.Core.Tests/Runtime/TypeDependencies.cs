using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;

namespace ReplaceMe.Core.Tests.Runtime;

/// <summary>
/// Which types each top-level type of a compiled assembly uses: its base type and interfaces, the signatures of its
/// fields, methods, properties and locals, its attributes, and every type, method and field its IL refers to.
/// Nested types (lambdas, iterators, records' helpers) count for their top-level type.
/// </summary>
internal static class TypeDependencies
{
    /// <summary>Top-level type full name → full names of the types it uses (generic arguments included).</summary>
    public static Dictionary<string, HashSet<string>> Read(string assemblyPath)
    {
        using var pe = new PEReader(File.OpenRead(assemblyPath));
        var md = pe.GetMetadataReader();
        var names = new SignatureNames(md);
        var result = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var handle in md.TypeDefinitions)
        {
            var type = md.GetTypeDefinition(handle);
            var owner = TopLevel(md, handle);
            if (owner == "<Module>") continue;
            if (!result.TryGetValue(owner, out var used)) result[owner] = used = new HashSet<string>(StringComparer.Ordinal);
            void Add(string? text)
            {
                if (text is null) return;
                foreach (var part in text.Split(['<', '>', ',', '[', ']', '&', '*', ' ', '(', ')'], StringSplitOptions.RemoveEmptyEntries))
                    used.Add(part.Split('+')[0]);
            }
            string Name(EntityHandle h) => h.Kind switch
            {
                HandleKind.TypeDefinition => IlCallGraph.TypeName(md, (TypeDefinitionHandle)h),
                HandleKind.TypeReference => IlCallGraph.TypeName(md, (TypeReferenceHandle)h),
                HandleKind.TypeSpecification => md.GetTypeSpecification((TypeSpecificationHandle)h).DecodeSignature(names, null),
                _ => "",
            };
            if (!type.BaseType.IsNil) Add(Name(type.BaseType));
            foreach (var i in type.GetInterfaceImplementations()) Add(Name(md.GetInterfaceImplementation(i).Interface));
            foreach (var a in type.GetCustomAttributes()) Add(AttributeType(md, names, md.GetCustomAttribute(a)));
            foreach (var f in type.GetFields()) Add(md.GetFieldDefinition(f).DecodeSignature(names, null));
            foreach (var p in type.GetProperties())
            {
                var sig = md.GetPropertyDefinition(p).DecodeSignature(names, null);
                Add(sig.ReturnType);
                foreach (var t in sig.ParameterTypes) Add(t);
            }
            foreach (var m in type.GetMethods())
            {
                var method = md.GetMethodDefinition(m);
                var sig = method.DecodeSignature(names, null);
                Add(sig.ReturnType);
                foreach (var t in sig.ParameterTypes) Add(t);
                foreach (var a in method.GetCustomAttributes()) Add(AttributeType(md, names, md.GetCustomAttribute(a)));
                if (method.RelativeVirtualAddress == 0) continue;
                var body = pe.GetMethodBody(method.RelativeVirtualAddress);
                if (!body.LocalSignature.IsNil)
                    foreach (var t in md.GetStandaloneSignature(body.LocalSignature).DecodeLocalSignature(names, null)) Add(t);
                foreach (var token in IlCallGraph.Tokens(body.GetILReader()))
                    Add(TokenText(md, names, MetadataTokens.EntityHandle(token), Name));
            }
        }
        return result;
    }

    private static string? TokenText(MetadataReader md, SignatureNames names, EntityHandle handle, Func<EntityHandle, string> typeName)
    {
        switch (handle.Kind)
        {
            case HandleKind.TypeDefinition or HandleKind.TypeReference or HandleKind.TypeSpecification:
                return typeName(handle);
            case HandleKind.MethodDefinition:
            {
                var m = md.GetMethodDefinition((MethodDefinitionHandle)handle);
                var sig = m.DecodeSignature(names, null);
                return IlCallGraph.TypeName(md, m.GetDeclaringType()) + " " + sig.ReturnType + " " + string.Join(" ", sig.ParameterTypes);
            }
            case HandleKind.FieldDefinition:
            {
                var f = md.GetFieldDefinition((FieldDefinitionHandle)handle);
                return IlCallGraph.TypeName(md, f.GetDeclaringType()) + " " + f.DecodeSignature(names, null);
            }
            case HandleKind.MethodSpecification:
            {
                var spec = md.GetMethodSpecification((MethodSpecificationHandle)handle);
                return TokenText(md, names, spec.Method, typeName) + " " + string.Join(" ", spec.DecodeSignature(names, null));
            }
            case HandleKind.MemberReference:
            {
                var member = md.GetMemberReference((MemberReferenceHandle)handle);
                string parent = member.Parent.Kind == HandleKind.MethodDefinition ? "" : typeName(member.Parent);
                if (member.GetKind() == MemberReferenceKind.Field) return parent + " " + member.DecodeFieldSignature(names, null);
                var sig = member.DecodeMethodSignature(names, null);
                return parent + " " + sig.ReturnType + " " + string.Join(" ", sig.ParameterTypes);
            }
            default:
                return null;
        }
    }

    private static string? AttributeType(MetadataReader md, SignatureNames names, CustomAttribute attribute) =>
        attribute.Constructor.Kind switch
        {
            HandleKind.MethodDefinition => IlCallGraph.TypeName(md, md.GetMethodDefinition((MethodDefinitionHandle)attribute.Constructor).GetDeclaringType()),
            HandleKind.MemberReference => md.GetMemberReference((MemberReferenceHandle)attribute.Constructor).Parent is { Kind: HandleKind.TypeReference } p
                ? IlCallGraph.TypeName(md, (TypeReferenceHandle)p) : null,
            _ => null,
        };

    private static string TopLevel(MetadataReader md, TypeDefinitionHandle handle)
    {
        var declaring = md.GetTypeDefinition(handle).GetDeclaringType();
        return declaring.IsNil ? IlCallGraph.TypeName(md, handle) : TopLevel(md, declaring);
    }
}
