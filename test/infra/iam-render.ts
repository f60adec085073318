/**
 * Renders CloudFormation values of IAM policies as text, so two spellings of
 * the same ARN compare equal: `${Logical}` for Ref, `${Logical.Attr}` for
 * GetAtt, and `${Logical.Name}` for a state machine's name, whether CDK wrote
 * it as GetAtt Name or as the 7th ':'-field of its Ref.
 */
type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Renders a CloudFormation value as text: `${Logical}` for Ref, `${Logical.Attr}` for GetAtt, `${Logical.Name}` for a state machine's name. */
export function render(value: unknown): string {
  if (typeof value === 'string') return value;
  if (isObject(value)) {
    if (typeof value.Ref === 'string') return `\${${value.Ref}}`;
    const getAtt = value['Fn::GetAtt'];
    if (Array.isArray(getAtt) && getAtt.length === 2) return `\${${String(getAtt[0])}.${String(getAtt[1])}}`;
    const join = value['Fn::Join'];
    if (Array.isArray(join) && typeof join[0] === 'string' && Array.isArray(join[1])) return join[1].map(render).join(join[0]);
    const select = value['Fn::Select'];
    if (Array.isArray(select)) {
      // CDK's name of a state machine: the 7th ':'-field of its ARN (its Ref).
      const split = isObject(select[1]) ? select[1]['Fn::Split'] : undefined;
      if (select[0] === 6 && Array.isArray(split) && split[0] === ':' && isObject(split[1]) && typeof split[1].Ref === 'string') return `\${${split[1].Ref}.Name}`;
    }
  }
  throw new Error(`cannot render ${JSON.stringify(value)}`);
}
