import { readFileSync } from 'node:fs';
import protobuf from 'protobufjs';
import descriptor from 'protobufjs/ext/descriptor/index.js';
import { ErrorCodes, TasteError } from '../common/errors.js';

/**
 * .proto files → FileDescriptorProtos, as `protoc --descriptor_set_out` writes them: one per source
 * file, under the name clients import it by, with the field names as written (snake_case), their
 * json_name, fully-qualified type names and the file's own dependency list. This is what gRPC
 * reflection must publish so that foreign clients (grpcurl, Python, Go) see the contract itself.
 *
 * Why not protobufjs' own `Root#toDescriptor` (what @grpc/proto-loader hands to reflection): it
 * makes one file per package named after it (`taste_v1.proto`), leaves json_name out and type names
 * relative, and proto-loader feeds it the camelCase names the runtime objects use.
 *
 * Only what proto3 files without extensions or custom options can hold is translated; anything
 * else fails loudly, so a later change to a .proto cannot publish a descriptor that silently
 * differs from protoc's (training/tests/test_grpc_reflection.py compares the two field by field).
 */

export interface ProtoSource {
  /** The name clients import the file by, relative to its include root: 'taste/v1/embedding_service.proto'. */
  name: string;
  /** Where the file is read from. */
  path: string;
}

export interface FileDescriptorBytes {
  /** As in ProtoSource; also the descriptor's `name`. */
  name: string;
  /** An encoded google.protobuf.FileDescriptorProto. */
  bytes: Uint8Array;
}

type Kind = 'message' | 'enum' | 'service';

interface ParsedFile {
  source: ProtoSource;
  pkg: string;
  imports: string[];
  root: protobuf.Root;
}

type Descriptor = Record<string, unknown>;

// google.protobuf.FieldDescriptorProto.Type and .Label, by name.
const fieldTypes = descriptor.FieldDescriptorProto.lookupEnum('Type').values;
const LABEL_OPTIONAL = 1;
const LABEL_REPEATED = 3;

/** Parses every source (imports must be among them) and encodes one descriptor per file, in order. */
export function buildFileDescriptors(sources: readonly ProtoSource[]): FileDescriptorBytes[] {
  const files = sources.map(parseFile);
  const known = new Set(sources.map((source) => source.name));
  const symbols = new Map<string, Kind>();
  for (const file of files) {
    for (const name of file.imports) {
      if (!known.has(name)) fail(file.source, `imports ${name}, which is not among the files given (add it)`);
    }
    collectSymbols(file.root, symbols);
  }
  return files.map((file) => {
    const message = descriptor.FileDescriptorProto.fromObject(fileDescriptor(file, symbols));
    return { name: file.source.name, bytes: descriptor.FileDescriptorProto.encode(message).finish() };
  });
}

function parseFile(source: ProtoSource): ParsedFile {
  let parsed: protobuf.IParserResult;
  try {
    parsed = protobuf.parse(readFileSync(source.path, 'utf8'), new protobuf.Root(), { keepCase: true });
  } catch (error) {
    throw new TasteError(ErrorCodes.CONFIG_INVALID, `cannot parse ${source.path}: ${(error as Error).message}`, { cause: error });
  }
  if ((parsed.weakImports ?? []).length > 0) fail(source, 'has weak imports');
  return { source, pkg: parsed.package ?? '', imports: parsed.imports ?? [], root: parsed.root };
}

function collectSymbols(ns: protobuf.NamespaceBase, symbols: Map<string, Kind>): void {
  for (const nested of ns.nestedArray) {
    if (nested instanceof protobuf.Type) symbols.set(fullName(nested), 'message');
    else if (nested instanceof protobuf.Enum) symbols.set(fullName(nested), 'enum');
    else if (nested instanceof protobuf.Service) symbols.set(fullName(nested), 'service');
    if (nested instanceof protobuf.Namespace) collectSymbols(nested, symbols);
  }
}

function fileDescriptor(file: ParsedFile, symbols: Map<string, Kind>): Descriptor {
  const pkgNs = file.pkg === '' ? file.root : file.root.lookup(file.pkg);
  if (!(pkgNs instanceof protobuf.Namespace)) fail(file.source, `has no package namespace ${file.pkg}`);
  const top = pkgNs.nestedArray;
  const ctx = { source: file.source, symbols };
  if (top.some((obj) => (obj as { _edition?: string })._edition !== 'proto3')) fail(file.source, 'is not proto3');
  if (file.pkg !== '' && file.root.nestedArray.length !== 1) fail(file.source, 'declares symbols outside its package');
  return {
    name: file.source.name,
    package: file.pkg || undefined,
    dependency: file.imports,
    messageType: top.filter((obj) => obj instanceof protobuf.Type).map((type) => messageDescriptor(type, ctx)),
    enumType: top.filter((obj) => obj instanceof protobuf.Enum).map((en) => enumDescriptor(en, ctx)),
    service: top.filter((obj) => obj instanceof protobuf.Service).map((service) => serviceDescriptor(service, ctx)),
    extension: top.some((obj) => obj instanceof protobuf.Field) ? fail(file.source, 'declares extensions') : [],
    // File options land on the root or the package namespace, depending on where they stand.
    options: options({ ...file.root.options, ...(pkgNs === file.root ? {} : pkgNs.options) }, descriptor.FileOptions, ctx, []),
    syntax: 'proto3',
  };
}

interface Context {
  source: ProtoSource;
  symbols: Map<string, Kind>;
}

function messageDescriptor(type: protobuf.Type, ctx: Context): Descriptor {
  // protoc lists a proto3 `optional` field's synthetic oneof after the declared ones.
  const oneofs = [
    ...type.oneofsArray.filter((oneof) => !isSynthetic(oneof)),
    ...type.oneofsArray.filter((oneof) => isSynthetic(oneof)),
  ];
  const mapEntries: Descriptor[] = [];
  const fields = type.fieldsArray.map((field) => {
    const base = {
      name: field.name,
      number: field.id,
      jsonName: (field.options?.json_name as string | undefined) ?? jsonName(field.name),
    };
    const { json_name: _json, proto3_optional: optional, ...rest } = field.options ?? {};
    if (field instanceof protobuf.MapField) {
      const entry = mapEntryName(field.name);
      mapEntries.push({
        name: entry,
        field: [
          { name: 'key', number: 1, label: LABEL_OPTIONAL, ...fieldType(field.keyType, type, ctx), jsonName: 'key' },
          { name: 'value', number: 2, label: LABEL_OPTIONAL, ...fieldType(field.type, type, ctx), jsonName: 'value' },
        ],
        options: { mapEntry: true },
      });
      return { ...base, label: LABEL_REPEATED, type: fieldTypes.TYPE_MESSAGE, typeName: `.${fullName(type)}.${entry}`, options: options(rest, descriptor.FieldOptions, ctx, [field.name]) };
    }
    if (field.extend !== undefined) fail(ctx.source, `extends ${field.extend}`);
    if (field.required) fail(ctx.source, `has a required field ${field.name}`);
    return {
      ...base,
      label: field.repeated ? LABEL_REPEATED : LABEL_OPTIONAL,
      ...fieldType(field.type, type, ctx),
      oneofIndex: field.partOf ? oneofs.indexOf(field.partOf) : undefined,
      proto3Optional: optional === true ? true : undefined,
      options: options(rest, descriptor.FieldOptions, ctx, [field.name]),
    };
  });
  // Map entries follow the declared nested messages: protoc puts them where the map field stands,
  // which protobufjs does not keep (the comparison with protoc would show a difference).
  const nested = type.nestedArray;
  return {
    name: type.name,
    field: fields,
    nestedType: [...nested.filter((obj) => obj instanceof protobuf.Type).map((t) => messageDescriptor(t, ctx)), ...mapEntries],
    enumType: nested.filter((obj) => obj instanceof protobuf.Enum).map((en) => enumDescriptor(en, ctx)),
    oneofDecl: oneofs.map((oneof) => ({ name: oneof.name, options: options(oneof.options, descriptor.OneofOptions, ctx, [oneof.name]) })),
    // protobufjs keeps reserved ranges inclusive; DescriptorProto's end is exclusive.
    reservedRange: reservedRanges(type.reserved).map(([start, end]) => ({ start, end: end + 1 })),
    reservedName: reservedNames(type.reserved),
    extensionRange: type.extensions?.length ? fail(ctx.source, `${type.name} declares extension ranges`) : [],
    options: options(type.options, descriptor.MessageOptions, ctx, [type.name]),
  };
}

function enumDescriptor(en: protobuf.Enum, ctx: Context): Descriptor {
  return {
    name: en.name,
    value: Object.entries(en.values).map(([name, number]) => ({
      name,
      number,
      options: options(en.valuesOptions?.[name], descriptor.EnumValueOptions, ctx, [en.name, name]),
    })),
    // EnumReservedRange's end is inclusive, as protobufjs keeps it.
    reservedRange: reservedRanges(en.reserved).map(([start, end]) => ({ start, end })),
    reservedName: reservedNames(en.reserved),
    options: options(en.options, descriptor.EnumOptions, ctx, [en.name]),
  };
}

function serviceDescriptor(service: protobuf.Service, ctx: Context): Descriptor {
  return {
    name: service.name,
    method: service.methodsArray.map((method) => ({
      name: method.name,
      inputType: `.${resolve(method.requestType, service, 'message', ctx)}`,
      outputType: `.${resolve(method.responseType, service, 'message', ctx)}`,
      options: options(method.options, descriptor.MethodOptions, ctx, [service.name, method.name]),
      // protoc sets these only where `stream` is written.
      clientStreaming: method.requestStream ? true : undefined,
      serverStreaming: method.responseStream ? true : undefined,
    })),
    options: options(service.options, descriptor.ServiceOptions, ctx, [service.name]),
  };
}

function fieldType(typeName: string, scope: protobuf.ReflectionObject, ctx: Context): Descriptor {
  if (Object.hasOwn(protobuf.types.basic, typeName)) return { type: fieldTypes[`TYPE_${typeName.toUpperCase()}`] };
  const resolved = resolve(typeName, scope, undefined, ctx);
  const kind = ctx.symbols.get(resolved);
  return { type: kind === 'enum' ? fieldTypes.TYPE_ENUM : fieldTypes.TYPE_MESSAGE, typeName: `.${resolved}` };
}

/**
 * protoc's scoping: a leading dot is fully qualified; otherwise the innermost enclosing scope that
 * has the name wins (`Foo` in `a.b.M` tries `a.b.M.Foo`, `a.b.Foo`, `a.Foo`, `Foo`).
 */
function resolve(name: string, scope: protobuf.ReflectionObject, want: Kind | undefined, ctx: Context): string {
  const candidates = name.startsWith('.') ? [name.slice(1)] : scopesOf(fullName(scope)).map((s) => (s ? `${s}.${name}` : name));
  for (const candidate of candidates) {
    const kind = ctx.symbols.get(candidate);
    if (kind !== undefined && kind !== 'service' && (want === undefined || kind === want)) return candidate;
  }
  return fail(ctx.source, `refers to ${name}, which none of the files given defines`);
}

function scopesOf(name: string): string[] {
  const parts = name.split('.');
  return parts.map((_, i) => parts.slice(0, parts.length - i).join('.')).concat('');
}

/** Writes options as protoc does: only those set, and only the descriptor.proto ones (no custom options). */
function options(values: Record<string, unknown> | undefined, type: protobuf.Type, ctx: Context, where: string[]): Descriptor | undefined {
  const entries = Object.entries(values ?? {});
  if (entries.length === 0) return undefined;
  const out: Descriptor = {};
  for (const [key, value] of entries) {
    const field = protobuf.util.camelCase(key);
    if (!(field in type.fields)) fail(ctx.source, `sets option ${key} on ${where.join('.') || 'the file'}, which is not a ${type.name} field`);
    out[field] = value;
  }
  return out;
}

function reservedRanges(reserved: Array<number[] | string> | undefined): Array<[number, number]> {
  return (reserved ?? []).filter((r): r is number[] => Array.isArray(r)).map((r) => [r[0] ?? 0, r[1] ?? r[0] ?? 0]);
}

function reservedNames(reserved: Array<number[] | string> | undefined): string[] {
  return (reserved ?? []).filter((r): r is string => typeof r === 'string');
}

function isSynthetic(oneof: protobuf.OneOf): boolean {
  return oneof.fieldsArray.length === 1 && oneof.fieldsArray[0]?.options?.proto3_optional === true;
}

/** protoc's ToJsonName: drop each underscore and capitalise the letter after it. */
export function jsonName(fieldName: string): string {
  return fieldName.replace(/_+(.?)/g, (_, next: string) => next.toUpperCase());
}

/** protoc's MapEntryName: `by_name` → `ByNameEntry`. */
function mapEntryName(fieldName: string): string {
  return `${fieldName.replace(/(?:^|_+)(.?)/g, (_, next: string) => next.toUpperCase())}Entry`;
}

function fullName(obj: protobuf.ReflectionObject): string {
  return obj.fullName.replace(/^\./, '');
}

function fail(source: ProtoSource, what: string): never {
  throw new TasteError(ErrorCodes.CONFIG_INVALID, `${source.path} (${source.name}) ${what}: cannot publish it for reflection as protoc would`);
}
