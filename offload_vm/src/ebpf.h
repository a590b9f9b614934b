/*
 * eBPF instruction set constants (RFC 9669), composed from the named fields of the opcode
 * byte. Only ISA facts live here; nothing about the VM.
 */
#ifndef FOVM_EBPF_H
#define FOVM_EBPF_H

#include <stdint.h>

/* One 8-byte instruction slot, little-endian as on the wire. */
struct ebpf_insn {
    uint8_t code;
    uint8_t regs; /* dst in bits 0-3, src in bits 4-7 */
    int16_t off;
    int32_t imm;
};

#define EBPF_DST(i) ((i)->regs & 0x0f)
#define EBPF_SRC(i) ((i)->regs >> 4)

/* Instruction classes (bits 0-2). */
#define EBPF_CLS_MASK 0x07
#define EBPF_CLS_LD 0x00
#define EBPF_CLS_LDX 0x01
#define EBPF_CLS_ST 0x02
#define EBPF_CLS_STX 0x03
#define EBPF_CLS_ALU 0x04
#define EBPF_CLS_JMP 0x05
#define EBPF_CLS_JMP32 0x06
#define EBPF_CLS_ALU64 0x07

/* Source operand (bit 3) for ALU and JMP classes. */
#define EBPF_SRC_K 0x00
#define EBPF_SRC_X 0x08
/* For the END operation the same bit selects the byte order. */
#define EBPF_TO_LE 0x00
#define EBPF_TO_BE 0x08

/* Operation (bits 4-7) of ALU classes. */
#define EBPF_OP_MASK 0xf0
#define EBPF_ALU_ADD 0x00
#define EBPF_ALU_SUB 0x10
#define EBPF_ALU_MUL 0x20
#define EBPF_ALU_DIV 0x30
#define EBPF_ALU_OR 0x40
#define EBPF_ALU_AND 0x50
#define EBPF_ALU_LSH 0x60
#define EBPF_ALU_RSH 0x70
#define EBPF_ALU_NEG 0x80
#define EBPF_ALU_MOD 0x90
#define EBPF_ALU_XOR 0xa0
#define EBPF_ALU_MOV 0xb0
#define EBPF_ALU_ARSH 0xc0
#define EBPF_ALU_END 0xd0

/* Operation (bits 4-7) of JMP classes. */
#define EBPF_JMP_JA 0x00
#define EBPF_JMP_JEQ 0x10
#define EBPF_JMP_JGT 0x20
#define EBPF_JMP_JGE 0x30
#define EBPF_JMP_JSET 0x40
#define EBPF_JMP_JNE 0x50
#define EBPF_JMP_JSGT 0x60
#define EBPF_JMP_JSGE 0x70
#define EBPF_JMP_CALL 0x80
#define EBPF_JMP_EXIT 0x90
#define EBPF_JMP_JLT 0xa0
#define EBPF_JMP_JLE 0xb0
#define EBPF_JMP_JSLT 0xc0
#define EBPF_JMP_JSLE 0xd0

/* Load/store: size (bits 3-4) and mode (bits 5-7). */
#define EBPF_SIZE_MASK 0x18
#define EBPF_SIZE_W 0x00
#define EBPF_SIZE_H 0x08
#define EBPF_SIZE_B 0x10
#define EBPF_SIZE_DW 0x18
#define EBPF_MODE_MASK 0xe0
#define EBPF_MODE_IMM 0x00
#define EBPF_MODE_ABS 0x20
#define EBPF_MODE_IND 0x40
#define EBPF_MODE_MEM 0x60
#define EBPF_MODE_MEMSX 0x80
#define EBPF_MODE_ATOMIC 0xc0

/* Atomic operations (imm of an ATOMIC instruction). */
#define EBPF_ATOMIC_ADD 0x00
#define EBPF_ATOMIC_OR 0x40
#define EBPF_ATOMIC_AND 0x50
#define EBPF_ATOMIC_XOR 0xa0
#define EBPF_ATOMIC_FETCH 0x01
#define EBPF_ATOMIC_XCHG (0xe0 | EBPF_ATOMIC_FETCH)
#define EBPF_ATOMIC_CMPXCHG (0xf0 | EBPF_ATOMIC_FETCH)

/* Source register of CALL. */
#define EBPF_PSEUDO_HELPER 0
#define EBPF_PSEUDO_CALL 1
#define EBPF_PSEUDO_KFUNC 2

/* Source register of LDDW (64-bit immediate load). */
#define EBPF_PSEUDO_IMM64 0
#define EBPF_PSEUDO_MAP_FD 1
#define EBPF_PSEUDO_MAP_VALUE 2
#define EBPF_PSEUDO_VAR_ADDR 3
#define EBPF_PSEUDO_CODE_ADDR 4
#define EBPF_PSEUDO_MAP_IDX 5
#define EBPF_PSEUDO_MAP_IDX_VALUE 6

#define EBPF_STACK_SIZE 512
#define EBPF_NREGS 11

/* Every valid opcode byte, named. X(name, value). */
#define EBPF_ALU_OPS(X, CLS, SFX)                                                                 \
    X(ADD##SFX##_IMM, CLS | EBPF_SRC_K | EBPF_ALU_ADD)                                            \
    X(ADD##SFX##_REG, CLS | EBPF_SRC_X | EBPF_ALU_ADD)                                            \
    X(SUB##SFX##_IMM, CLS | EBPF_SRC_K | EBPF_ALU_SUB)                                            \
    X(SUB##SFX##_REG, CLS | EBPF_SRC_X | EBPF_ALU_SUB)                                            \
    X(MUL##SFX##_IMM, CLS | EBPF_SRC_K | EBPF_ALU_MUL)                                            \
    X(MUL##SFX##_REG, CLS | EBPF_SRC_X | EBPF_ALU_MUL)                                            \
    X(DIV##SFX##_IMM, CLS | EBPF_SRC_K | EBPF_ALU_DIV)                                            \
    X(DIV##SFX##_REG, CLS | EBPF_SRC_X | EBPF_ALU_DIV)                                            \
    X(OR##SFX##_IMM, CLS | EBPF_SRC_K | EBPF_ALU_OR)                                              \
    X(OR##SFX##_REG, CLS | EBPF_SRC_X | EBPF_ALU_OR)                                              \
    X(AND##SFX##_IMM, CLS | EBPF_SRC_K | EBPF_ALU_AND)                                            \
    X(AND##SFX##_REG, CLS | EBPF_SRC_X | EBPF_ALU_AND)                                            \
    X(LSH##SFX##_IMM, CLS | EBPF_SRC_K | EBPF_ALU_LSH)                                            \
    X(LSH##SFX##_REG, CLS | EBPF_SRC_X | EBPF_ALU_LSH)                                            \
    X(RSH##SFX##_IMM, CLS | EBPF_SRC_K | EBPF_ALU_RSH)                                            \
    X(RSH##SFX##_REG, CLS | EBPF_SRC_X | EBPF_ALU_RSH)                                            \
    X(NEG##SFX, CLS | EBPF_SRC_K | EBPF_ALU_NEG)                                                  \
    X(MOD##SFX##_IMM, CLS | EBPF_SRC_K | EBPF_ALU_MOD)                                            \
    X(MOD##SFX##_REG, CLS | EBPF_SRC_X | EBPF_ALU_MOD)                                            \
    X(XOR##SFX##_IMM, CLS | EBPF_SRC_K | EBPF_ALU_XOR)                                            \
    X(XOR##SFX##_REG, CLS | EBPF_SRC_X | EBPF_ALU_XOR)                                            \
    X(MOV##SFX##_IMM, CLS | EBPF_SRC_K | EBPF_ALU_MOV)                                            \
    X(MOV##SFX##_REG, CLS | EBPF_SRC_X | EBPF_ALU_MOV)                                            \
    X(ARSH##SFX##_IMM, CLS | EBPF_SRC_K | EBPF_ALU_ARSH)                                          \
    X(ARSH##SFX##_REG, CLS | EBPF_SRC_X | EBPF_ALU_ARSH)

#define EBPF_JMP_OPS(X, CLS, SFX)                                                                 \
    X(JEQ##SFX##_IMM, CLS | EBPF_SRC_K | EBPF_JMP_JEQ)                                            \
    X(JEQ##SFX##_REG, CLS | EBPF_SRC_X | EBPF_JMP_JEQ)                                            \
    X(JGT##SFX##_IMM, CLS | EBPF_SRC_K | EBPF_JMP_JGT)                                            \
    X(JGT##SFX##_REG, CLS | EBPF_SRC_X | EBPF_JMP_JGT)                                            \
    X(JGE##SFX##_IMM, CLS | EBPF_SRC_K | EBPF_JMP_JGE)                                            \
    X(JGE##SFX##_REG, CLS | EBPF_SRC_X | EBPF_JMP_JGE)                                            \
    X(JSET##SFX##_IMM, CLS | EBPF_SRC_K | EBPF_JMP_JSET)                                          \
    X(JSET##SFX##_REG, CLS | EBPF_SRC_X | EBPF_JMP_JSET)                                          \
    X(JNE##SFX##_IMM, CLS | EBPF_SRC_K | EBPF_JMP_JNE)                                            \
    X(JNE##SFX##_REG, CLS | EBPF_SRC_X | EBPF_JMP_JNE)                                            \
    X(JSGT##SFX##_IMM, CLS | EBPF_SRC_K | EBPF_JMP_JSGT)                                          \
    X(JSGT##SFX##_REG, CLS | EBPF_SRC_X | EBPF_JMP_JSGT)                                          \
    X(JSGE##SFX##_IMM, CLS | EBPF_SRC_K | EBPF_JMP_JSGE)                                          \
    X(JSGE##SFX##_REG, CLS | EBPF_SRC_X | EBPF_JMP_JSGE)                                          \
    X(JLT##SFX##_IMM, CLS | EBPF_SRC_K | EBPF_JMP_JLT)                                            \
    X(JLT##SFX##_REG, CLS | EBPF_SRC_X | EBPF_JMP_JLT)                                            \
    X(JLE##SFX##_IMM, CLS | EBPF_SRC_K | EBPF_JMP_JLE)                                            \
    X(JLE##SFX##_REG, CLS | EBPF_SRC_X | EBPF_JMP_JLE)                                            \
    X(JSLT##SFX##_IMM, CLS | EBPF_SRC_K | EBPF_JMP_JSLT)                                          \
    X(JSLT##SFX##_REG, CLS | EBPF_SRC_X | EBPF_JMP_JSLT)                                          \
    X(JSLE##SFX##_IMM, CLS | EBPF_SRC_K | EBPF_JMP_JSLE)                                          \
    X(JSLE##SFX##_REG, CLS | EBPF_SRC_X | EBPF_JMP_JSLE)

#define EBPF_MEM_OPS(X)                                                                           \
    X(LDDW, EBPF_CLS_LD | EBPF_MODE_IMM | EBPF_SIZE_DW)                                           \
    X(LDXB, EBPF_CLS_LDX | EBPF_MODE_MEM | EBPF_SIZE_B)                                           \
    X(LDXH, EBPF_CLS_LDX | EBPF_MODE_MEM | EBPF_SIZE_H)                                           \
    X(LDXW, EBPF_CLS_LDX | EBPF_MODE_MEM | EBPF_SIZE_W)                                           \
    X(LDXDW, EBPF_CLS_LDX | EBPF_MODE_MEM | EBPF_SIZE_DW)                                         \
    X(LDXSB, EBPF_CLS_LDX | EBPF_MODE_MEMSX | EBPF_SIZE_B)                                        \
    X(LDXSH, EBPF_CLS_LDX | EBPF_MODE_MEMSX | EBPF_SIZE_H)                                        \
    X(LDXSW, EBPF_CLS_LDX | EBPF_MODE_MEMSX | EBPF_SIZE_W)                                        \
    X(STB, EBPF_CLS_ST | EBPF_MODE_MEM | EBPF_SIZE_B)                                             \
    X(STH, EBPF_CLS_ST | EBPF_MODE_MEM | EBPF_SIZE_H)                                             \
    X(STW, EBPF_CLS_ST | EBPF_MODE_MEM | EBPF_SIZE_W)                                             \
    X(STDW, EBPF_CLS_ST | EBPF_MODE_MEM | EBPF_SIZE_DW)                                           \
    X(STXB, EBPF_CLS_STX | EBPF_MODE_MEM | EBPF_SIZE_B)                                           \
    X(STXH, EBPF_CLS_STX | EBPF_MODE_MEM | EBPF_SIZE_H)                                           \
    X(STXW, EBPF_CLS_STX | EBPF_MODE_MEM | EBPF_SIZE_W)                                           \
    X(STXDW, EBPF_CLS_STX | EBPF_MODE_MEM | EBPF_SIZE_DW)                                         \
    X(ATOMIC_W, EBPF_CLS_STX | EBPF_MODE_ATOMIC | EBPF_SIZE_W)                                    \
    X(ATOMIC_DW, EBPF_CLS_STX | EBPF_MODE_ATOMIC | EBPF_SIZE_DW)

#define EBPF_MISC_OPS(X)                                                                          \
    X(LE, EBPF_CLS_ALU | EBPF_TO_LE | EBPF_ALU_END)                                               \
    X(BE, EBPF_CLS_ALU | EBPF_TO_BE | EBPF_ALU_END)                                               \
    X(BSWAP, EBPF_CLS_ALU64 | EBPF_TO_LE | EBPF_ALU_END)                                          \
    X(JA, EBPF_CLS_JMP | EBPF_JMP_JA)                                                             \
    X(JA32, EBPF_CLS_JMP32 | EBPF_JMP_JA)                                                         \
    X(CALL, EBPF_CLS_JMP | EBPF_SRC_K | EBPF_JMP_CALL)                                            \
    X(CALLX, EBPF_CLS_JMP | EBPF_SRC_X | EBPF_JMP_CALL)                                           \
    X(EXIT, EBPF_CLS_JMP | EBPF_JMP_EXIT)

/* All valid opcodes. */
#define EBPF_OPCODES(X)                                                                           \
    EBPF_ALU_OPS(X, EBPF_CLS_ALU64, 64)                                                           \
    EBPF_ALU_OPS(X, EBPF_CLS_ALU, 32)                                                             \
    EBPF_JMP_OPS(X, EBPF_CLS_JMP, 64)                                                             \
    EBPF_JMP_OPS(X, EBPF_CLS_JMP32, 32)                                                           \
    EBPF_MEM_OPS(X)                                                                               \
    EBPF_MISC_OPS(X)

#define EBPF_ENUM_OP(name, value) EBPF_OP_##name = (value),
enum ebpf_opcode { EBPF_OPCODES(EBPF_ENUM_OP) EBPF_OP_INVALID_ = 0x100 };
#undef EBPF_ENUM_OP

#endif /* FOVM_EBPF_H */
