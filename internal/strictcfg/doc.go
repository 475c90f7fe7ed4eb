// Package strictcfg decodes the project's data files (bench scenarios,
// netem link descriptions) from JSON or YAML into Go structs, strictly: an
// unknown field, a value of the wrong type or a malformed duration is an
// error naming the field's path ("forward.loss"), never silently ignored.
//
// Field names are the structs' json tags. Beyond plain JSON values it
// accepts what people write in such files:
//
//   - a time.Duration as a Go duration string ("50ms", "1m30s") or the
//     number 0; any other bare number is refused, since "50" could mean
//     seconds or nanoseconds;
//   - an integer as a number or a string with an SI suffix, k, M or G
//     (powers of 1000), optionally followed by "bit" or "b" ("4M", "4mbit",
//     "64k");
//   - any type implementing encoding.TextUnmarshaler from a string.
//
// A field of type any keeps the decoded tree as it is, for Assign to apply
// later onto a value the caller chooses.
//
// Range checks are the caller's: decode, then call the struct's Validate.
package strictcfg
