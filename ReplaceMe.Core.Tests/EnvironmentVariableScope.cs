namespace ReplaceMe.Core.Tests;

/// <summary>Sets an environment variable of this process (null: removes it) and restores the old value on dispose.</summary>
internal sealed class EnvironmentVariableScope : IDisposable
{
    private readonly string _name;
    private readonly string? _old;

    public EnvironmentVariableScope(string name, string? value)
    {
        _name = name;
        _old = Environment.GetEnvironmentVariable(name);
        Environment.SetEnvironmentVariable(name, value);
    }

    public void Dispose() => Environment.SetEnvironmentVariable(_name, _old);
}
