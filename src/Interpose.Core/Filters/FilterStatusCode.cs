using System.Globalization;
using System.Text;

namespace Interpose.Core.Filters;

/// <summary><c>~c N</c>: the response status code equals <see cref="Code"/>.</summary>
/// <param name="Code">The status code.</param>
public sealed record FilterStatusCode(int Code) : FilterNode
{
    internal override void Write(StringBuilder sb) => sb.Append("~c ").Append(Code.ToString(CultureInfo.InvariantCulture));
}
